"""The counting functions of the rule language (criteria §5 and §7.0): days
below a threshold in a window, counted by the ICAHT rule with the platelet
transfusion rule, and the episodes begun so far. Their numeric work is in
carscore.kernels."""

from __future__ import annotations

import polars as pl

from carscore.compile import BOOL, NUM, Compiled, Compiler, combined, function
from carscore.expr import Call
from carscore.kernels import episodes_expr, low_days_expr


def _course_bound(c: Compiler, n: Call, i: int) -> pl.Expr:
    bound = c.arg(n, i, NUM)
    if bound.level != "course":
        raise c.fail(f"{n.func}() needs a fixed day or a course value (one per course) here", n.args[i])
    return bound.expr


def _transfusions(c: Compiler, n: Call, first: int) -> tuple[pl.Expr | None, float]:
    """The optional (transfused, free_days) arguments: the §7.0 platelet transfusion rule."""
    if len(n.args) <= first:
        return None, 7.0
    if len(n.args) != first + 2:
        raise c.fail(f"{n.func}() takes the transfusion rule as two arguments: transfused, free_days", n)
    transfused = c.arg(n, first, BOOL).expr.fill_null(False)
    return transfused, float(c.constant_arg(n, first + 1))  # type: ignore[arg-type]


def _low_days(c: Compiler, n: Call, strict: bool) -> Compiled:
    x = c.arg(n, 0, NUM)
    threshold = float(c.constant_arg(n, 1))  # type: ignore[arg-type]
    start, end = _course_bound(c, n, 2), _course_bound(c, n, 3)
    recovery = float(c.constant_arg(n, 4))  # type: ignore[arg-type]
    transfused, free_days = _transfusions(c, n, 5)
    return Compiled(low_days_expr(x.expr, threshold, start, end, recovery, strict, transfused, free_days), NUM, "course")


_LOW_DAYS_DOC = (
    "(x, threshold, from_day, to_day, recovery_days[, transfused, free_days]): days of the window on which x is "
    "{what} the threshold, counted by the ICAHT rule: a day without a value takes the value interpolated between "
    "the measured days around it (days before the first or after the last measurement in the window are not "
    "counted); an episode ends at recovery_days consecutive days above, which are not counted; shorter runs above "
    "between days below are counted; cumulative over the window; null when nothing was measured in the window. "
    "With transfused (a condition: a transfusion that day) and free_days, a day above with a transfusion on it or "
    "on the free_days - 1 days before counts as below inside an episode and is ignored outside one"
)


@function("days_at_or_below", (5, 7), "days_at_or_below" + _LOW_DAYS_DOC.format(what="at or below"), causal=False)
def _days_at_or_below(c: Compiler, n: Call) -> Compiled:
    return _low_days(c, n, strict=False)


@function("days_below", (5, 7), "days_below" + _LOW_DAYS_DOC.format(what="below"), causal=False)
def _days_below(c: Compiler, n: Call) -> Compiled:
    return _low_days(c, n, strict=True)


def _episodes(c: Compiler, n: Call, strict: bool) -> Compiled:
    x = c.arg(n, 0, NUM)
    threshold = float(c.constant_arg(n, 1))  # type: ignore[arg-type]
    start = _course_bound(c, n, 2)
    recovery = float(c.constant_arg(n, 3))  # type: ignore[arg-type]
    transfused, free_days = _transfusions(c, n, 4)
    return combined(episodes_expr(x.expr, threshold, start, recovery, strict, transfused, free_days), NUM, "day", x)


_EPISODES_DOC = (
    "(x, threshold, from_day, recovery_days[, transfused, free_days]): on each day, how many episodes with x "
    "{what} the threshold have begun since from_day, read as days_{fn}() reads them (interpolated between "
    "measured days, an episode ending after recovery_days days above, the transfusion rule); only measurements "
    "up to the day are used; null before the first"
)


@function("episodes_at_or_below", (4, 6), "episodes_at_or_below" + _EPISODES_DOC.format(what="at or below", fn="at_or_below"))
def _episodes_at_or_below(c: Compiler, n: Call) -> Compiled:
    return _episodes(c, n, strict=False)


@function("episodes_below", (4, 6), "episodes_below" + _EPISODES_DOC.format(what="below", fn="below"))
def _episodes_below(c: Compiler, n: Call) -> Compiled:
    return _episodes(c, n, strict=True)
