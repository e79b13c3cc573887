"""How one value reads in the report: text, a CSS class for its colour, and
(seldom) a hover title. A value that is not known (null) reads "–" with the
class ``na`` (the page's legend says what the dash means) and is never shown
as 0 or "no"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carscore.presentation import OutputView

NOT_KNOWN = "–"


@dataclass(frozen=True)
class Cell:
    text: str
    css: str = ""
    title: str = ""


def number(value: Any) -> str:
    if value is None:
        return NOT_KNOWN
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def day(value: Any) -> str:
    return NOT_KNOWN if value is None else str(value)


def not_known() -> Cell:
    # the page's legend says what the dash means: not repeated on each of thousands of cells
    return Cell(NOT_KNOWN, "na")


def grade(value: Any) -> Cell:
    if value is None:
        return not_known()
    return Cell(str(int(value)), f"g{min(max(int(value), 0), 5)}")


def class_value(value: Any) -> Cell:
    return not_known() if value is None else Cell(str(value), "class")


def flag(value: Any, words: tuple[str, str] = ("yes", "no")) -> Cell:
    """A yes/no output in the words its rule set declares (MRD: neg / pos)."""
    if value is None:
        return not_known()
    return Cell(words[0] if value else words[1], "yes" if value else "no")


def measured(value: Any) -> Cell:
    return not_known() if value is None else Cell(number(value), "num")


def output_cell(view: OutputView, row: dict[str, Any]) -> Cell:
    """A day output in the kind its rule set declares, with its fallback output
    in its place when blank (the CNS substatus falls back to the status)."""
    value = view.value_in(row)
    if view.kind == "grade":
        return grade(value)
    if view.kind == "flag":
        return flag(value, view.words)
    if view.kind in ("day", "number"):
        return measured(value)
    return class_value(value)


def course_value(view: OutputView, value: Any) -> str:
    """A summary key declared as a line of the course summary, with its note."""
    if view.kind == "grade":
        text = f"grade {int(value)}"
    elif view.kind == "flag":
        text = view.words[0] if value else view.words[1]
    elif view.kind == "day":
        text = f"day {value}"
    elif view.kind == "number":
        text = number(value)
    else:
        text = str(value)
    return f"{text} ({view.note})" if view.note else text


def percent(part: float | None) -> str:
    return NOT_KNOWN if part is None else f"{100 * part:.1f}"
