"""The `tables` section of a mapping file, read and checked: each table (its files,
columns, kind, filters and administration actions) and the targets of its codes and
fields, every problem at file:line:col. The format is described in mapping.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from carscore.rulefile import FieldReader
from carscore.yamlsafe import LDict, LList

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


def name_list(r: FieldReader, value: Any, at: Any, what: str) -> list[str]:
    """A name or a list of names (files, columns, words), as text."""
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


def _conditions(r: FieldReader, spec: Any, at: Any, what: str) -> dict[str, tuple[str, ...]]:
    """`where`: source column -> alternatives (see mapping.py's docstring)."""
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


def _code_map(r: FieldReader, spec: Any, at: Any, what: str, columns: set[str]) -> CodeMap | None:
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


def _dictionary(r: FieldReader, spec: Any, at: Any, what: str) -> Dictionary | None:
    if spec is None:
        return None
    if isinstance(spec, (str, LList)):
        spec = LDict({"files": spec})
    if not isinstance(spec, LDict):
        r.err(f"'dictionary' of {what} must be a mapping with 'files'", spec, at)
        return None
    r.fields(spec, {"files", *DICTIONARY_COLUMNS}, {"files"}, f"'dictionary' of {what}")
    names = {k: str(spec.get(k, v)) for k, v in DICTIONARY_COLUMNS.items()}
    return Dictionary(name_list(r, spec.get("files"), spec, f"'files' of the dictionary of {what}"), **names)


def parse_table(r: FieldReader, name: str, spec: Any, columns: set[str], base: Table | None) -> Table | None:
    """One table of `tables`, over the same table of the mapping it extends (``base``)."""
    what = f"table '{name}'"
    if not isinstance(spec, LDict):
        r.err(f"{what} must be a mapping", spec)
        return None
    r.fields(spec, _TABLE_FIELDS, set() if base else {"files"}, what)
    t = base or Table(name, [], [])
    for key in ("files", "time", "interval", "code", "value", "sentinels", "unit", "skip_status", "drop_status", "ignore"):
        if key in spec:
            setattr(t, key, name_list(r, spec[key], spec, f"'{key}' of {what}"))
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
