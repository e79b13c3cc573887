"""The input data contract: columns, their kinds, plausible ranges and how
several rows of one day merge. Read from contract.yaml beside this module."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from carscore.errors import RuleErrors
from carscore.expr import Node
from carscore.rulefile import FieldReader
from carscore.yamlsafe import LDict, load_yaml

KINDS = {"integer", "number", "boolean", "dose", "enum", "text", "time"}
MERGES = {"max", "min", "first", "join"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    merge: str
    low: float | None = None
    high: float | None = None
    values: tuple[str, ...] = ()
    unit: str = ""
    hint: str = ""

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "number")


CHECK_LEVELS = ("row", "day")


@dataclass(frozen=True)
class Check:
    """A cross-column input check: where ``when`` holds, the input is wrong.
    ``level`` says what it reads: one row (one assessment, e.g. ICE items
    against that row's own total) or the day after its rows are combined."""

    when: Node
    source_text: str
    columns: tuple[str, ...]
    message: str
    level: str = "row"


@dataclass(frozen=True)
class Contract:
    columns: dict[str, Column]
    checks: tuple[Check, ...]


def read_columns(r: FieldReader, specs: LDict) -> dict[str, Column]:
    """Input columns as the contract (or a rule set's ``inputs``) declares them:
    {name: {type, merge, range?, values?, unit?, hint?}}."""
    columns: dict[str, Column] = {}
    for name, spec in specs.items():
        if not isinstance(spec, LDict):
            r.key_err(specs, name, f"column '{name}' needs 'type' and 'merge'")
            continue
        r.fields(spec, {"type", "range", "merge", "values", "unit", "hint"}, {"type", "merge"}, f"column '{name}'")
        kind, merge = spec.get("type"), spec.get("merge")
        if kind not in KINDS:
            r.err(f"unknown column type '{kind}' (known: {', '.join(sorted(KINDS))})", kind, spec)
            continue
        if merge not in MERGES:
            r.err(f"unknown merge '{merge}' (known: {', '.join(sorted(MERGES))})", merge, spec)
            continue
        bounds = spec.get("range") or (None, None)
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            r.err(f"column '{name}': range is [low, high]", bounds, spec)
            continue
        low, high = bounds
        values = tuple(str(v) for v in (spec.get("values") or ()))
        if kind == "enum" and not values:
            r.err(f"column '{name}': an enum column lists its values", spec, specs)
            continue
        columns[str(name)] = Column(
            str(name), str(kind), str(merge), low, high, values, spec.get("unit", ""), spec.get("hint", "")
        )
    return columns


def with_inputs(base: Contract, inputs: dict[str, tuple[str, Column]]) -> Contract:
    """The contract with the input columns rule sets declare ({name: (rule set id, column)});
    a rule set may not redefine a contract column."""
    if not inputs:
        return base
    columns = dict(base.columns)
    for name, (_, column) in inputs.items():
        columns[name] = column
    return Contract(columns, base.checks)


@lru_cache(maxsize=1)
def load_contract(path: str | None = None) -> Contract:
    file = Path(path) if path else Path(__file__).with_name("contract.yaml")
    doc = load_yaml(file.read_text(encoding="utf-8"), str(file))
    r = FieldReader(str(file))
    columns = read_columns(r, doc["columns"])
    checks = []
    for item in doc.get("checks") or []:
        r.fields(item, {"when", "columns", "message", "level"}, {"when", "columns", "message"}, "a check")
        level = item.get("level", "row")
        if level not in CHECK_LEVELS:
            r.err(f"unknown check level '{level}' (row or day)", level, item)
        expr = r.expression(item["when"], item, "'when'")
        if expr:
            checks.append(Check(expr.node, expr.source.text, tuple(item["columns"]), item["message"], level))
    if r.errors:
        raise RuleErrors(r.errors)
    assert isinstance(doc, LDict)
    return Contract(columns, tuple(checks))
