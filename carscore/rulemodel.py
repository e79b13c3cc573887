"""The typed parts of a rule set (parameters, row values, decisions and their
cases, flags, summaries), as carscore.ruleset reads them from a rule file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from carscore.presentation import OutputView
from carscore.rulefile import Expression, Source, Template


@dataclass(frozen=True)
class Parameter:
    name: str
    value: Any
    citation: str
    unit: str = ""
    description: str = ""


ROW_COMBINES = ("max", "min", "any", "all", "first", "last", "sum", "row_with_max", "row_with_min")


@dataclass(frozen=True)
class RowValue:
    """A value of one input row, and how the rows of a day combine into the day's value."""

    name: str
    value: Expression
    combine: str | None = None  # None: read by other row values only
    of: str | None = None  # row_with_max / row_with_min: the row value that picks the row


@dataclass(frozen=True)
class Criterion:
    """One line of a worst-of table: a grade and when it applies."""

    value: Any
    when: Expression
    reason: Template | None


@dataclass(frozen=True)
class Case:
    when: Expression | None
    then: dict[str, Any]
    reason: Template | None
    worst: tuple[Criterion, ...] = ()
    source: Source | None = None


@dataclass(frozen=True)
class Decision:
    outputs: tuple[str, ...]
    reason_key: str | None
    cases: tuple[Case, ...]
    note_missing: tuple[tuple[str, ...], ...] = ()
    source: Source | None = None
    note_sources: tuple[Source, ...] = ()
    looks_ahead: str = ""  # why this day result may read later days


@dataclass(frozen=True)
class Flag:
    id: str
    when: Expression
    description: str = ""
    looks_ahead: str = ""


@dataclass(frozen=True)
class Summary:
    key: str
    value: Expression | None = None
    decision: Decision | None = None


@dataclass
class RuleSet:
    id: str
    title: str
    version: str
    citation: str
    file: str
    description: str = ""
    # the grading system the rule set belongs to (astct, lee2014, ...): graded when
    # selected with --systems (astct always); rule sets without one always run
    system: str = ""
    # a library holds definitions only (parameters, inputs, row values, let): it is
    # never graded itself; a rule set that includes it grades with its own copy of
    # them, read with that rule set's parameters (criteria §6.12)
    library: bool = False
    includes: tuple[str, ...] = ()
    sha256: str = ""  # of the bytes read, so a result names exactly the rules it used
    parameters: dict[str, Parameter] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)  # input columns it adds to the contract
    input_positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    row_values: dict[str, RowValue] = field(default_factory=dict)
    lets: dict[str, Expression] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    flags: dict[str, Flag] = field(default_factory=dict)
    summary: dict[str, Summary] = field(default_factory=dict)
    presentation: dict[str, OutputView] = field(default_factory=dict)  # how each output is shown

    @property
    def outputs(self) -> list[str]:
        return [o for d in self.decisions for o in d.outputs]


def scalar_ok(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def value_kind(value: Any) -> str | None:
    """A parameter value's kind as said to the user: true/false, number, text or
    list (a list parameter); None for anything else."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, tuple):
        return "list"
    return None
