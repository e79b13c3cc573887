"""Mapping files: how a source's tables and codes become contract values.

A preset (``clif``, ``fhir``, ``sdtm``, ``epic``, ``redcap``) is a mapping
file shipped with carscore; a centre copies one and edits it for its own
codes. Read like rule files: safely, every problem as ``file:line:col``.

    mapping: <id>                 title, version, citation, description
    reader: tables | fhir         how the files are read (default tables)
    naive_time: utc | local | error     timestamps written without an offset
    extends: <preset or file>     start from another mapping, then override
    patients: {files, key, patient}     a table mapping a source key to patient_id
    births: {files, patient, birth_date}   birth dates, for ages where --infusions gives none
    tables:
      <name>:
        files: [stems]            found among the given files, .csv .parquet .ndjson .xpt;
                                  a stem may hold * and ? (REDCap names its exports
                                  <PROJECT>_DATA_<date>_<time>.csv: "*_data_*")
        key | patient: column     the record's encounter key (through `patients`) or patient id
        time: column | [date column, time column]   (the time column may be absent)
        interval: [start column, end column]        each record runs from start to end:
                                  drip   a start at start and a stop at end (each record
                                         is its own order)
                                  state  the record's values from start, again at each
                                         midnight inside (a charting holds a day at
                                         most); at end, those of the latest interval
                                         still running, else `outside`
                                  given  given on every date from start to end
        outside: {column: value}  a state interval table: the value outside every interval
                                  (o2_device: none); without it nothing is said there
        naive_time: ...           this table's own rule, if it differs
        kind: measure | state | drip | given
        where: {column: condition}  records failing it are left out (counted); conditions
                                  as in a code's `where`
        code: column | [columns]  long form: the column naming what was measured (the
                                  first that is not blank)
        match: exact | words      a code is the whole cell (default), or words the cell
                                  holds ("norepinephrine" in "NOREPINEPHRINE 4 MG/250 ML
                                  INFUSION"; whole words, so not in "norepinephrine" for
                                  "epinephrine"; the first listed code that fits wins)
        value: column | [columns] the value (the first that is not blank)
        sentinels: [words]        a value column holding one of these is blank (Epic
                                  ORD_NUM_VALUE 9999999: read the next column)
        unit: column | [columns]  the unit written on the record; a list pairs with
                                  `value` (the unit of the value column read)
        split: text               a cell listing several values ("a;b") gives one each
        codes: {code: target | [targets]}
        fields: {source column: target}           wide form: one column per value
        contract_fields: true     wide form: every column named as a contract column is
                                  a field of that column (the `fields` add to them)
        dictionary: {files, field, type, choices, label}   wide form: a data dictionary in
                                  REDCap's layout, looked for beside the data file; it
                                  decodes choice codes to their labels ("1, Nasal cannula
                                  | 2, ..."), reads checkbox columns var___k (checked: the
                                  label of k, or yes for a yes/no column; unchecked:
                                  nothing) and column headers written as field labels
        action: column; actions: {word: start | stop | given | skip | cancel}; order: column
                                  cancel: the record removes the order's other actions
                                  at the same time, and counts for nothing itself
        dose: column              drip: a start whose dose is 0 stops the drip
        status: column; skip_status: [words]; drop_status: [words]
        accepted: column          rows where it is N are skipped
        edit_link: column; line: column; group: column    a line that supersedes another
        ignore: [codes]           codes read and skipped without a message
        strict: true | {column: condition}   a code no table of the file reads is an error
                                  until mapped or ignored (where the condition holds: the
                                  category the mapping reads, QSCAT ICANS), not a count

    Codes and the words of `values` are compared without case and with spaces, hyphens
    and underscores alike ("ICE Score" is ice_score, "High-flow NC" high flow nc); codes
    matched by words, without case and with runs of spaces as one. A code that YAML
    would read as a number is written in quotes ("5": sbp).

    A target (of a code or a field) is a contract column name, or
        column: contract column
        kind: measure | state     this code's own kind, in a measure or state table
        unit: text                the unit the value is in (over the record's)
        first_number: true        the first number of the text ("120/80" -> 120)
        from: column              the value is read from this column of the record
        set: word                 the value is this word (a procedure's device)
        agent: name               drip: the drug (default: the code)
        values: {word: value}     source words to contract values; a word mapped to
                                  nothing (~) is no value; keys "> x", ">= x", "< x",
                                  "<= x", "= x" map numbers (csf blasts "> 0": yes).
                                  Words no map knows are read as the contract writes
                                  them (case, spaces and hyphens aside: "Awakens to
                                  voice" is awakens_to_voice); anything else is an error
        where: {column: condition}    the target reads only records where the
                                  condition holds. A condition is a word or a list of
                                  words (any of them), or a text "a|b"; "(blank)" is
                                  an empty cell, "~words" a cell holding those words;
                                  "!" before a word excludes it ("!csf"; "!a|b" is
                                  neither a nor b)

A source table must hold its time, interval, patient (or key), code and (with
`actions`) action columns; any other column it lacks reads as blank (a missing
status column skips nothing; a `where` on a missing column sees blanks).
Records identical in every column are read once (counted).

This module finds a mapping (a preset or a file) and reads its top level; each
table of it is read by mapping_tables.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carscore.errors import RuleError, RuleErrors
from carscore.importer.mapping_tables import BLANK, NAIVE, CodeMap, Dictionary, Table, name_list, parse_table
from carscore.rulefile import FieldReader, load_yaml_file
from carscore.yamlsafe import LDict

# a table and its targets live in mapping_tables.py; importable from here as before
__all__ = ["BLANK", "CodeMap", "Dictionary", "Mapping", "Table", "find_mapping", "preset_names", "presets_dir", "read_mapping"]


@dataclass
class Mapping:
    id: str
    file: str
    title: str = ""
    reader: str = "tables"
    naive_time: str = "local"
    patients: dict[str, str] = field(default_factory=dict)
    patient_files: list[str] = field(default_factory=list)
    # a table of birth dates (patient, birth_date): ages where --infusions gives none
    births: dict[str, str] = field(default_factory=dict)
    birth_files: list[str] = field(default_factory=list)
    tables: dict[str, Table] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # reader-specific sections (fhir: codes, devices ...)
    # how long an oxygen device charting holds without a new one (import.md §2)
    device_max_carry_hours: float = 24.0


def presets_dir() -> Path:
    return Path(__file__).resolve().parent / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def find_mapping(name: str) -> Path:
    """A preset name, or the path of a mapping file."""
    path = Path(name)
    preset = presets_dir() / f"{name}.yaml"
    if path.suffix.lower() not in (".yaml", ".yml") and preset.is_file():
        return preset
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise RuleErrors([RuleError("no such mapping file", name)])
        return path
    if not preset.is_file():
        raise RuleErrors([RuleError(f"no preset '{name}'; presets: {', '.join(preset_names())}, or a mapping file (.yaml)")])
    return preset


def _merged(base: Any, extra: Any, levels: int) -> Any:
    """``extra`` over ``base``, mappings merged ``levels`` deep (section, then code
    system); below that an entry replaces the base's whole (a code's target)."""
    if levels > 0 and isinstance(base, dict) and isinstance(extra, dict):
        out = LDict(base)
        out.__dict__.update(getattr(base, "__dict__", {}))
        out.__dict__.update(getattr(extra, "__dict__", {}))
        out.key_at = {**getattr(base, "key_at", {}), **getattr(extra, "key_at", {})}
        for key, value in extra.items():
            out[key] = _merged(base.get(key), value, levels - 1)
        return out
    return extra


PARAMETERS = {"device_max_carry_hours"}


def _parameters(r: FieldReader, doc: LDict, m: Mapping) -> None:
    """Import conventions a centre may change, each with its citation:
    parameters: {device_max_carry_hours: {value: 24, citation: ...}}."""
    params = r.mapping(doc["parameters"], "'parameters'", doc) if "parameters" in doc else None
    for name, spec in (params or {}).items():
        if name not in PARAMETERS:
            r.key_err(params, name, f"unknown import parameter '{name}' (known: {', '.join(sorted(PARAMETERS))})")
            continue
        if not isinstance(spec, LDict):
            r.key_err(params, name, f"parameter '{name}' needs 'value' and 'citation'")
            continue
        r.fields(spec, {"value", "citation", "unit"}, {"value", "citation"}, f"parameter '{name}'")
        value = spec.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            r.err(f"parameter '{name}' must be a number of hours above 0", value, spec)
            continue
        m.device_max_carry_hours = float(value)


def _lookup_table(r: FieldReader, doc: LDict, section: str, columns: tuple[str, ...]) -> tuple[dict[str, str], list[str]] | None:
    """A section naming a lookup table: its files and the columns it reads."""
    if section not in doc:
        return None
    spec = r.mapping(doc[section], f"'{section}'", doc)
    if spec is None:
        return None
    r.fields(spec, {"files", *columns}, {"files", *columns}, f"'{section}'")
    named = {k: str(v) for k, v in spec.items() if k != "files"}
    return named, name_list(r, spec.get("files"), spec, f"'files' of '{section}'")


def read_mapping(path: Path, columns: set[str]) -> Mapping:
    file = str(path)
    doc, _ = load_yaml_file(path, "mapping file")
    r = FieldReader(file)
    if not isinstance(doc, LDict):
        raise RuleErrors([RuleError("a mapping file is a mapping with 'mapping' (its id) and 'tables'", file, 1, 1)])
    base: Mapping | None = None
    if "extends" in doc:
        base = read_mapping(find_mapping(str(doc["extends"])), columns)
    allowed = {
        "mapping",
        "title",
        "version",
        "citation",
        "description",
        "reader",
        "naive_time",
        "extends",
        "patients",
        "births",
        "tables",
        "parameters",
    }
    reader_sections = {"observations", "devices", "procedures", "medications", "systems"}
    r.fields(doc, allowed | reader_sections, set() if base else {"mapping"}, "the mapping")
    m = base or Mapping(id="", file=file)
    m.file = file
    m.id = str(doc.get("mapping", m.id))
    m.title = str(doc.get("title", m.title))
    m.reader = str(doc.get("reader", m.reader))
    if m.reader not in ("tables", "fhir"):
        r.err(f"unknown reader '{m.reader}' (tables or fhir)", doc.get("reader"), doc)
    naive = doc.get("naive_time", m.naive_time)
    if naive not in NAIVE:
        r.err(f"naive_time must be one of {', '.join(NAIVE)}", naive, doc)
    m.naive_time = str(naive)
    _parameters(r, doc, m)
    for section in reader_sections & set(doc):
        # a mapping that extends another adds codes to its sections and overrides only
        # the entries it names (one more LOINC code keeps all the preset's others)
        m.raw[section] = _merged(m.raw.get(section), doc[section], levels=2)
    # lookup tables: each record's patient (through an encounter key), birth dates
    found = _lookup_table(r, doc, "patients", ("key", "patient"))
    if found:
        m.patients, m.patient_files = found
    found = _lookup_table(r, doc, "births", ("patient", "birth_date"))
    if found:
        m.births, m.birth_files = found
    tables = r.mapping(doc.get("tables", LDict()), "'tables'", doc) or {}
    for name, spec in tables.items():
        table = parse_table(r, str(name), spec, columns, m.tables.get(str(name)))
        if table is not None:
            m.tables[str(name)] = table
    if r.errors:
        raise RuleErrors(r.errors)
    return m
