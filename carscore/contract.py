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


@lru_cache(maxsize=1)
def load_contract(path: str | None = None) -> Contract:
    file = Path(path) if path else Path(__file__).with_name("contract.yaml")
    doc = load_yaml(file.read_text(encoding="utf-8"), str(file))
    r = FieldReader(str(file))
    columns: dict[str, Column] = {}
    for name, spec in doc["columns"].items():
        r.fields(spec, {"type", "range", "merge", "values", "unit", "hint"}, {"type", "merge"}, f"column '{name}'")
        kind, merge = spec["type"], spec["merge"]
        if kind not in KINDS:
            r.err(f"unknown column type '{kind}'", kind, spec)
        if merge not in MERGES:
            r.err(f"unknown merge '{merge}'", merge, spec)
        low, high = spec.get("range") or (None, None)
        columns[name] = Column(
            name, kind, merge, low, high, tuple(spec.get("values") or ()), spec.get("unit", ""), spec.get("hint", "")
        )
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
