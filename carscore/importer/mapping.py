"""Mapping files: how a source's tables and codes become contract values.

A preset (``clif``, ``fhir``, ``sdtm``, ``epic``, ``redcap``) is a mapping
file shipped with carscore; a centre copies one and edits it for its own
codes. Read like rule files: safely, every problem as ``file:line:col``.

    mapping: <id>                 title, version, citation, description
    reader: tables | fhir         how the files are read (default tables)
    naive_time: utc | local | error     timestamps written without an offset
    extends: <preset or file>     start from another mapping, then override
    patients: {files, key, patient}     a table mapping a source key to patient_id
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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carscore.errors import RuleError, RuleErrors
from carscore.ruleset import _Reader
from carscore.yamlsafe import LDict, LList, load_yaml

KINDS = ("measure", "state", "drip", "given")
CODE_KINDS = ("measure", "state")
NAIVE = ("utc", "local", "error")
ACTIONS = ("start", "stop", "given", "skip", "cancel")
MATCHES = ("exact", "words")
BLANK = "(blank)"
_RANGE = re.compile(r"^\s*(>=|<=|>|<|=)\s*([-+]?\d+(?:\.\d+)?)\s*$")
# REDCap's data dictionary, as downloaded from the project's Dictionary page
DICTIONARY_COLUMNS = {
    "field": "Variable / Field Name",
    "type": "Field Type",
    "choices": "Choices, Calculations, OR Slider Labels",
    "label": "Field Label",
}


@dataclass(frozen=True)
class CodeMap:
    column: str
    unit: str | None = None
    values: dict[str, str | None] = field(default_factory=dict)
    # source column -> alternatives: "word", "(blank)", "~words", each may start with "!"
    where: dict[str, tuple[str, ...]] = field(default_factory=dict)
    agent: str | None = None
    first_number: bool = False
    kind: str | None = None
    from_column: str | None = None
    set_value: str | None = None
    # (operator, number, value) for number keys of `values`, in the order written
    ranges: tuple[tuple[str, float, str | None], ...] = ()


@dataclass(frozen=True)
class Dictionary:
    files: list[str]
    field: str = DICTIONARY_COLUMNS["field"]
    type: str = DICTIONARY_COLUMNS["type"]
    choices: str = DICTIONARY_COLUMNS["choices"]
    label: str = DICTIONARY_COLUMNS["label"]


@dataclass
class Table:
    name: str
    files: list[str]
    time: list[str]
    key: str | None = None
    patient: str | None = None
    naive_time: str | None = None
    kind: str = "measure"
    code: list[str] = field(default_factory=list)
    match: str = "exact"
    value: list[str] = field(default_factory=list)
    sentinels: list[str] = field(default_factory=list)
    unit: list[str] = field(default_factory=list)
    split: str | None = None
    codes: dict[str, list[CodeMap]] = field(default_factory=dict)
    fields: dict[str, CodeMap] = field(default_factory=dict)
    contract_fields: bool = False
    dictionary: Dictionary | None = None
    interval: list[str] = field(default_factory=list)
    outside: dict[str, str] = field(default_factory=dict)
    where: dict[str, tuple[str, ...]] = field(default_factory=dict)
    action: str | None = None
    actions: dict[str, str] = field(default_factory=dict)
    order: str | None = None
    dose: str | None = None
    status: str | None = None
    skip_status: list[str] = field(default_factory=list)
    drop_status: list[str] = field(default_factory=list)
    accepted: str | None = None
    edit_link: str | None = None
    line: str | None = None
    group: str | None = None
    ignore: list[str] = field(default_factory=list)
    strict: dict[str, tuple[str, ...]] | None = None  # {}: every unknown code is an error


@dataclass
class Mapping:
    id: str
    file: str
    title: str = ""
    reader: str = "tables"
    naive_time: str = "local"
    patients: dict[str, str] = field(default_factory=dict)
    patient_files: list[str] = field(default_factory=list)
    tables: dict[str, Table] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)  # reader-specific sections (fhir: codes, devices ...)


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


def _words(r: _Reader, value: Any, at: Any, what: str) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, LList) else [value]
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            r.err(f"{what} must be names or a list of names", item, at)
            continue
        out.append(str(item))
    return out


def _word(value: Any) -> str | None:
    """A value of a map as the contract writes it: YAML's yes/no come back as words."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _conditions(r: _Reader, spec: Any, at: Any, what: str) -> dict[str, tuple[str, ...]]:
    """`where`: source column -> alternatives (see the module docstring)."""
    if spec is None:
        return {}
    if not isinstance(spec, LDict):
        r.err(f"{what}: 'where' must map source columns to the words they must hold", spec, at)
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for column, condition in spec.items():
        if condition is None:
            items = [None]
        elif isinstance(condition, LList):
            items = [_word(c) for c in condition]
        elif isinstance(condition, (str, int, float)):
            text = _word(condition) or ""
            negate = text.startswith("!")
            items = [("!" if negate else "") + part for part in text.lstrip("!").split("|")]
        else:
            r.err(f"{what}: the condition on '{column}' must be a word or a list of words", condition, spec)
            continue
        alternatives = []
        for item in items:
            if item is None:
                alternatives.append(BLANK)
                continue
            negate = item.startswith("!")
            word = item[1:] if negate else item
            word = " ".join(word.split()).lower()
            alternatives.append(("!" if negate else "") + (BLANK if word in ("", BLANK) else word))
        out[str(column)] = tuple(alternatives)
    return out


def _code_map(r: _Reader, spec: Any, at: Any, what: str, columns: set[str]) -> CodeMap | None:
    if isinstance(spec, str):
        spec = LDict({"column": spec})
    if not isinstance(spec, LDict):
        r.err(f"{what} must be a contract column name or a mapping with 'column'", spec, at)
        return None
    allowed = {"column", "unit", "values", "where", "agent", "first_number", "kind", "from", "set"}
    r.fields(spec, allowed, {"column"}, what)
    column = spec.get("column")
    if column not in columns:
        r.err(f"{what}: '{column}' is not a contract column", column, spec)
        return None
    values = spec.get("values") or LDict()
    if not isinstance(values, dict):
        r.err(f"{what}: 'values' must map source words to values", values, spec)
        return None
    words: dict[str, str | None] = {}
    ranges: list[tuple[str, float, str | None]] = []
    for key, value in values.items():
        if isinstance(value, (LDict, LList)):
            r.err(f"{what}: the value of '{key}' must be a word or a number", value, values)
            continue
        bound = _RANGE.match(str(key))
        if bound:
            ranges.append((bound.group(1), float(bound.group(2)), _word(value)))
        else:
            words[" ".join(str(key).split()).lower()] = _word(value)
    kind = spec.get("kind")
    if kind is not None and kind not in CODE_KINDS:
        r.err(f"{what}: a code's own kind is one of {', '.join(CODE_KINDS)}", kind, spec)
    if "from" in spec and "set" in spec:
        r.err(f"{what}: give 'from' (a column to read) or 'set' (a word), not both", spec.get("set"), spec)
    return CodeMap(
        str(column),
        None if spec.get("unit") is None else str(spec.get("unit")),
        words,
        _conditions(r, spec.get("where"), spec, what),
        None if spec.get("agent") is None else str(spec.get("agent")),
        bool(spec.get("first_number", False)),
        None if kind is None else str(kind),
        None if spec.get("from") is None else str(spec.get("from")),
        _word(spec.get("set")),
        tuple(ranges),
    )


def read_mapping(path: Path, columns: set[str]) -> Mapping:
    file = str(path)
    try:
        doc = load_yaml(path.read_text(encoding="utf-8"), file)
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleErrors([RuleError(f"cannot read the mapping file: {exc}", file)]) from None
    except RuleError as exc:
        raise RuleErrors([exc]) from None
    r = _Reader(file)
    if not isinstance(doc, LDict):
        raise RuleErrors([RuleError("a mapping file is a mapping with 'mapping' (its id) and 'tables'", file, 1, 1)])
    base: Mapping | None = None
    if "extends" in doc:
        base = read_mapping(find_mapping(str(doc["extends"])), columns)
    allowed = {"mapping", "title", "version", "citation", "description", "reader", "naive_time", "extends", "patients", "tables"}
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
    for section in reader_sections & set(doc):
        m.raw[section] = doc[section]
    if "patients" in doc:
        spec = r.mapping(doc["patients"], "'patients'", doc)
        if spec is not None:
            r.fields(spec, {"files", "key", "patient"}, {"files", "key", "patient"}, "'patients'")
            m.patients = {k: str(v) for k, v in spec.items() if k != "files"}
            m.patient_files = _words(r, spec.get("files"), spec, "'files' of 'patients'")
    tables = r.mapping(doc.get("tables", LDict()), "'tables'", doc) or {}
    for name, spec in tables.items():
        table = _table(r, str(name), spec, columns, m.tables.get(str(name)))
        if table is not None:
            m.tables[str(name)] = table
    if r.errors:
        raise RuleErrors(r.errors)
    return m


_TABLE_FIELDS = {
    "files",
    "time",
    "interval",
    "outside",
    "key",
    "patient",
    "naive_time",
    "kind",
    "where",
    "code",
    "match",
    "value",
    "sentinels",
    "unit",
    "split",
    "codes",
    "fields",
    "contract_fields",
    "dictionary",
    "action",
    "actions",
    "order",
    "dose",
    "status",
    "skip_status",
    "drop_status",
    "accepted",
    "edit_link",
    "line",
    "group",
    "ignore",
    "strict",
}


def _dictionary(r: _Reader, spec: Any, at: Any, what: str) -> Dictionary | None:
    if spec is None:
        return None
    if isinstance(spec, (str, LList)):
        spec = LDict({"files": spec})
    if not isinstance(spec, LDict):
        r.err(f"'dictionary' of {what} must be a mapping with 'files'", spec, at)
        return None
    r.fields(spec, {"files", *DICTIONARY_COLUMNS}, {"files"}, f"'dictionary' of {what}")
    names = {k: str(spec.get(k, v)) for k, v in DICTIONARY_COLUMNS.items()}
    return Dictionary(_words(r, spec.get("files"), spec, f"'files' of the dictionary of {what}"), **names)


def _table(r: _Reader, name: str, spec: Any, columns: set[str], base: Table | None) -> Table | None:
    what = f"table '{name}'"
    if not isinstance(spec, LDict):
        r.err(f"{what} must be a mapping", spec)
        return None
    r.fields(spec, _TABLE_FIELDS, set() if base else {"files"}, what)
    t = base or Table(name, [], [])
    for key in ("files", "time", "interval", "code", "value", "sentinels", "unit", "skip_status", "drop_status", "ignore"):
        if key in spec:
            setattr(t, key, _words(r, spec[key], spec, f"'{key}' of {what}"))
    for key in ("key", "patient", "action", "order", "dose", "status", "accepted", "edit_link", "line", "group", "split"):
        if key in spec:
            setattr(t, key, None if spec[key] is None else str(spec[key]))
    if "naive_time" in spec:
        if spec["naive_time"] not in NAIVE:
            r.err(f"naive_time must be one of {', '.join(NAIVE)}", spec["naive_time"], spec)
        t.naive_time = str(spec["naive_time"])
    if "kind" in spec:
        if spec["kind"] not in KINDS:
            r.err(f"kind of {what} must be one of {', '.join(KINDS)}", spec["kind"], spec)
        t.kind = str(spec["kind"])
    if "match" in spec:
        if spec["match"] not in MATCHES:
            r.err(f"'match' of {what} is one of {', '.join(MATCHES)}", spec["match"], spec)
        t.match = str(spec["match"])
    if "contract_fields" in spec:
        if not isinstance(spec["contract_fields"], bool):
            r.err(f"'contract_fields' of {what} is true or false", spec["contract_fields"], spec)
        t.contract_fields = spec["contract_fields"] is True
    if "where" in spec:
        t.where = _conditions(r, spec["where"], spec, what)
    if "strict" in spec:
        strict = spec["strict"]
        if isinstance(strict, bool):
            t.strict = {} if strict else None
        else:
            t.strict = _conditions(r, strict, spec, f"'strict' of {what}")
    if "dictionary" in spec:
        t.dictionary = _dictionary(r, spec["dictionary"], spec, what)
    if "outside" in spec:
        outside = r.mapping(spec["outside"], f"'outside' of {what}", spec) or {}
        for column, value in outside.items():
            if column not in columns:
                r.key_err(outside, column, f"'outside' of {what}: '{column}' is not a contract column")
            t.outside[str(column)] = _word(value) or ""
    if "actions" in spec:
        actions = r.mapping(spec["actions"], f"'actions' of {what}", spec) or {}
        for word, action in actions.items():
            if action not in ACTIONS:
                r.err(f"an action is one of {', '.join(ACTIONS)}", action, actions)
            t.actions[" ".join(str(word).split()).lower()] = str(action)
    if "codes" in spec:
        codes = r.mapping(spec["codes"], f"'codes' of {what}", spec) or {}
        for code, target in codes.items():
            targets = target if isinstance(target, LList) else [target]
            maps = [_code_map(r, one, codes, f"code '{code}' of {what}", columns) for one in targets]
            t.codes[" ".join(str(code).split()).lower()] = [m for m in maps if m is not None]
    if "fields" in spec:
        fields_ = r.mapping(spec["fields"], f"'fields' of {what}", spec) or {}
        for source, target in fields_.items():
            one = _code_map(r, target, fields_, f"field '{source}' of {what}", columns)
            if one is not None:
                t.fields[str(source)] = one
    if not t.time and t.interval:
        t.time = t.interval[:1]
    if not t.time:
        r.err(f"{what} needs 'time' (a column, or a date column and a time column) or 'interval'", spec)
    if t.interval and len(t.interval) != 2:
        r.err(f"'interval' of {what} is [start column, end column]", spec.get("interval"), spec)
    if t.interval and t.kind == "measure":
        r.err(f"{what}: an interval table holds states, drips or administrations (kind state, drip or given)", spec)
    if t.outside and not (t.interval and t.kind == "state"):
        r.err(f"'outside' of {what} is for a state table read as intervals", spec.get("outside"), spec)
    if len(t.unit) > 1 and len(t.unit) != len(t.value):
        r.err(f"{what}: a list of unit columns pairs with the value columns, one each", spec.get("unit"), spec)
    if not t.key and not t.patient:
        r.err(f"{what} needs 'key' (through 'patients') or 'patient' (the patient id column)", spec)
    if not t.codes and not t.fields and not t.contract_fields:
        r.err(f"{what} needs 'codes' (long form) or 'fields' (wide form)", spec)
    if t.codes and not t.code:
        r.err(f"{what} reads codes: name the column holding them in 'code'", spec)
    if t.kind in ("drip", "given") and any(m.kind for maps in t.codes.values() for m in maps):
        r.err(f"{what}: a code's own kind is for measure and state tables", spec)
    return t
