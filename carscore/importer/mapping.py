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
        files: [stems]            found among the given files, .csv .parquet .ndjson .xpt
        key | patient: column     the record's encounter key (through `patients`) or patient id
        time: column | [date column, time column]
        naive_time: ...           this table's own rule, if it differs
        kind: measure | state | drip | given
        code: column              long form: the column naming what was measured
        value: column | [columns] the value (the first that is not blank)
        unit: column              the unit written on the record
        codes: {code: {column, unit, values, where, agent, first_number}}
        fields: {source column: {column, unit, values}}   wide form
        action: column; actions: {word: start | stop | given | skip}; order: column
        status: column; skip_status: [words]; drop_status: [words]
        accepted: column          rows where it is N are skipped
        edit_link: column; line: column; group: column    a line that supersedes another
        ignore: [codes]           codes read and skipped without a message
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carscore.errors import RuleError, RuleErrors
from carscore.ruleset import _Reader
from carscore.yamlsafe import LDict, LList, load_yaml

KINDS = ("measure", "state", "drip", "given")
NAIVE = ("utc", "local", "error")
ACTIONS = ("start", "stop", "given", "skip")


@dataclass(frozen=True)
class CodeMap:
    column: str
    unit: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    agent: str | None = None
    first_number: bool = False


@dataclass
class Table:
    name: str
    files: list[str]
    time: list[str]
    key: str | None = None
    patient: str | None = None
    naive_time: str | None = None
    kind: str = "measure"
    code: str | None = None
    value: list[str] = field(default_factory=list)
    unit: str | None = None
    codes: dict[str, list[CodeMap]] = field(default_factory=dict)
    fields: dict[str, CodeMap] = field(default_factory=dict)
    action: str | None = None
    actions: dict[str, str] = field(default_factory=dict)
    order: str | None = None
    status: str | None = None
    skip_status: list[str] = field(default_factory=list)
    drop_status: list[str] = field(default_factory=list)
    accepted: str | None = None
    edit_link: str | None = None
    line: str | None = None
    group: str | None = None
    ignore: list[str] = field(default_factory=list)


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


def _code_map(r: _Reader, spec: Any, at: Any, what: str, columns: set[str]) -> CodeMap | None:
    if isinstance(spec, str):
        spec = LDict({"column": spec})
    if not isinstance(spec, LDict):
        r.err(f"{what} must be a contract column name or a mapping with 'column'", spec, at)
        return None
    r.fields(spec, {"column", "unit", "values", "where", "agent", "first_number"}, {"column"}, what)
    column = spec.get("column")
    if column not in columns:
        r.err(f"{what}: '{column}' is not a contract column", column, spec)
        return None
    values = spec.get("values") or {}
    where = spec.get("where") or {}
    for name, part in (("values", values), ("where", where)):
        if not isinstance(part, dict):
            r.err(f"{what}: '{name}' must map source words to values", part, spec)
            return None
    return CodeMap(
        str(column),
        None if spec.get("unit") is None else str(spec.get("unit")),
        {str(k).strip().lower(): str(v) for k, v in values.items()},
        {str(k): str(v) for k, v in where.items()},
        None if spec.get("agent") is None else str(spec.get("agent")),
        bool(spec.get("first_number", False)),
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
    "key",
    "patient",
    "naive_time",
    "kind",
    "code",
    "value",
    "unit",
    "codes",
    "fields",
    "action",
    "actions",
    "order",
    "status",
    "skip_status",
    "drop_status",
    "accepted",
    "edit_link",
    "line",
    "group",
    "ignore",
}


def _table(r: _Reader, name: str, spec: Any, columns: set[str], base: Table | None) -> Table | None:
    what = f"table '{name}'"
    if not isinstance(spec, LDict):
        r.err(f"{what} must be a mapping", spec)
        return None
    r.fields(spec, _TABLE_FIELDS, set() if base else {"files", "time"}, what)
    t = base or Table(name, [], [])
    for key in ("files", "time", "value", "skip_status", "drop_status", "ignore"):
        if key in spec:
            setattr(t, key, _words(r, spec[key], spec, f"'{key}' of {what}"))
    for key in ("key", "patient", "code", "unit", "action", "order", "status", "accepted", "edit_link", "line", "group"):
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
    if "actions" in spec:
        actions = r.mapping(spec["actions"], f"'actions' of {what}", spec) or {}
        for word, action in actions.items():
            if action not in ACTIONS:
                r.err(f"an action is one of {', '.join(ACTIONS)}", action, actions)
            t.actions[str(word).strip().lower()] = str(action)
    if "codes" in spec:
        codes = r.mapping(spec["codes"], f"'codes' of {what}", spec) or {}
        for code, target in codes.items():
            targets = target if isinstance(target, LList) else [target]
            maps = [_code_map(r, one, codes, f"code '{code}' of {what}", columns) for one in targets]
            t.codes[str(code).strip().lower()] = [m for m in maps if m is not None]
    if "fields" in spec:
        fields_ = r.mapping(spec["fields"], f"'fields' of {what}", spec) or {}
        for source, target in fields_.items():
            one = _code_map(r, target, fields_, f"field '{source}' of {what}", columns)
            if one is not None:
                t.fields[str(source)] = one
    if not t.key and not t.patient:
        r.err(f"{what} needs 'key' (through 'patients') or 'patient' (the patient id column)", spec)
    if not t.codes and not t.fields:
        r.err(f"{what} needs 'codes' (long form) or 'fields' (wide form)", spec)
    return t
