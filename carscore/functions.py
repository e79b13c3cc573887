"""The functions of the rule language.

Three families:
- values of one day (``recorded``, ``coalesce``, ``if`` ...): usable anywhere,
  row values included;
- the timeline up to this day (``ever``, ``ever_since``, ``previous`` ...):
  day values that read earlier days only;
- course aggregates (``max``, ``first_day``, ``auc`` ...) and ``nearest()``:
  they read the whole course, later days included. A day-level result built
  on them must declare ``looks_ahead`` (criteria §0: no grade may depend on a
  later day unless a rule says so).
"""

from __future__ import annotations

import polars as pl

from carscore.compile import (
    ANY,
    BOOL,
    NUM,
    TEXT,
    TIME,
    Compiled,
    Compiler,
    _level,
    combined,
    function,
)
from carscore.expr import Call, ListOf, Name
from carscore.kernels import auc_expr
from carscore.timeline import (
    as_count,
    course_cum_sum,
    course_forward_fill,
    course_shift,
    day,
    nearest_parts,
    over_course,
)

# -- values of one day --


@function("recorded", (1, 1), "true when the value was recorded (not blank)")
def _recorded(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    return combined(x.expr.is_not_null(), BOOL, x.level, x)


@function("any_recorded", (1, 99), "true when any of the values was recorded")
def _any_recorded(c: Compiler, n: Call) -> Compiled:
    xs = [c.arg(n, i) for i in range(len(n.args))]
    return combined(pl.any_horizontal([x.expr.is_not_null() for x in xs]), BOOL, _level(*xs), *xs)


@function("coalesce", (2, 99), "the first value that was recorded")
def _coalesce(c: Compiler, n: Call) -> Compiled:
    xs = [c.arg(n, i) for i in range(len(n.args))]
    types = {x.type for x in xs} - {ANY}
    if len(types) > 1:
        raise c.fail("coalesce() needs values of one kind", n)
    values = next((x.values for x in xs if x.values), None)
    return combined(
        pl.coalesce([x.expr for x in xs]),
        types.pop() if types else ANY,
        _level(*xs),
        *xs,
        values=values,
        inexact=any(x.inexact for x in xs),
    )


@function("greatest", (2, 99), "the largest of the recorded values")
def _greatest(c: Compiler, n: Call) -> Compiled:
    xs = [c.arg(n, i, NUM) for i in range(len(n.args))]
    return combined(pl.max_horizontal([x.expr for x in xs]), NUM, _level(*xs), *xs, inexact=any(x.inexact for x in xs))


@function("least", (2, 99), "the smallest of the recorded values")
def _least(c: Compiler, n: Call) -> Compiled:
    xs = [c.arg(n, i, NUM) for i in range(len(n.args))]
    return combined(pl.min_horizontal([x.expr for x in xs]), NUM, _level(*xs), *xs, inexact=any(x.inexact for x in xs))


@function("abs", (1, 1), "absolute value")
def _abs(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    return combined(x.expr.abs(), NUM, x.level, x, inexact=x.inexact)


@function("round", (2, 2), "round(x, digits): for reason texts")
def _round(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    digits = c.constant_arg(n, 1)
    return combined(x.expr.cast(pl.Float64).round(int(digits)), NUM, x.level, x)  # type: ignore[arg-type]


@function("floor", (1, 1), "the largest whole number not above x (completed years of age)")
def _floor(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    return combined(x.expr.cast(pl.Float64).floor(), NUM, x.level, x)


def format_value(c: Compiled) -> pl.Expr:
    """A value as words for a reason text; blank becomes 'not recorded'."""
    if c.is_constant and c.constant is not None and not isinstance(c.constant, bool):
        return pl.lit(str(c.constant))  # a parameter reads as written in its rule file
    e = c.expr
    if c.type == BOOL:
        text = pl.when(e.is_null()).then(None).when(e).then(pl.lit("yes")).otherwise(pl.lit("no"))
    else:
        text = e.cast(pl.String)
        if c.type == NUM:
            text = text.str.strip_suffix(".0")
    return text.fill_null("not recorded")


@function(
    "concat",
    (2, 99),
    "concat(a, b, ...): the values as one text, numbers and true/false as a reason writes them "
    "(so that a reason can quote a parameter: concat('< ', fio2_high_pct, ' % assumed'))",
)
def _concat(c: Compiler, n: Call) -> Compiled:
    xs = [c.arg(n, i) for i in range(len(n.args))]
    return combined(pl.concat_str([format_value(x) for x in xs]), TEXT, _level(*xs), *xs)


@function("if", (3, 3), "if(condition, value when true, value otherwise)")
def _if(c: Compiler, n: Call) -> Compiled:
    cond, a, b = c.arg(n, 0, BOOL), c.arg(n, 1), c.arg(n, 2)
    types = {a.type, b.type} - {ANY}
    if len(types) > 1:
        raise c.fail("if() needs both values of one kind", n)
    expr = pl.when(cond.expr).then(a.expr).otherwise(b.expr)
    return combined(
        expr,
        types.pop() if types else ANY,
        _level(cond, a, b),
        cond,
        a,
        b,
        values=a.values or b.values,
        inexact=a.inexact or b.inexact,
    )


@function("yes", (1, 1), "true only when the condition holds (not recorded counts as no)")
def _yes(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return combined(x.expr.fill_null(False), BOOL, x.level, x)


@function(
    "captured",
    (1, 1),
    "captured(column): the course's data file has this column at all (a blank cell in a file that has the "
    "column is 'not recorded that day'; a file without it does not capture that sign)",
)
def _captured(c: Compiler, n: Call) -> Compiled:
    arg = n.args[0]
    if not isinstance(arg, Name) or c.columns is None or arg.name not in c.columns:
        raise c.fail("captured() takes the name of an input column", arg)
    c.captured.add(arg.name)
    return Compiled(pl.col(captured_column(arg.name)), BOOL, "course")


def captured_column(name: str) -> str:
    return f"_captured_{name}"


# -- looking back along a course's timeline (this day and earlier days) --


@function("ever", (1, 1), "the condition held on this day or an earlier day of the course")
def _ever(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return combined(course_cum_sum(as_count(x.expr)) > 0, BOOL, "day", x)


@function("ever_before", (1, 1), "the condition held on an earlier day of the course")
def _ever_before(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return combined(course_cum_sum(as_count(x.expr)) - as_count(x.expr) > 0, BOOL, "day", x)


@function(
    "ever_since",
    (2, 2),
    "ever_since(condition, reset): the condition held on some day since the last reset day (a reset day starts afresh)",
)
def _ever_since(c: Compiler, n: Call) -> Compiled:
    x, reset = c.arg(n, 0, BOOL), c.arg(n, 1, BOOL)
    return combined(course_cum_sum(as_count(x.expr), reset.expr.fill_null(False)) > 0, BOOL, "day", x, reset)


@function("is_first", (1, 1), "the first day of the course on which the condition holds")
def _is_first(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    held = x.expr.fill_null(False)
    return combined(held & (course_cum_sum(as_count(x.expr)) == 1), BOOL, "day", x)


@function("consecutive_days", (1, 1), "how many days in a row, up to this one, the condition has held")
def _consecutive(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    held = as_count(x.expr)
    # a day with no row breaks the run, as a day on which it did not hold
    gap = (day() - course_shift(day())).fill_null(1) != 1
    return combined(course_cum_sum(held, (held == 0) | gap), NUM, "day", x)


@function("previous", (1, 1), "the last value recorded on an earlier day of the course")
def _previous(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    return combined(course_forward_fill(course_shift(x.expr)), x.type, "day", x, values=x.values, inexact=x.inexact)


@function(
    "hours_held",
    (1, 1),
    "hours_held(condition), in a row value: on a timed row where the condition holds, the hours since the first "
    "timed row of its unbroken run (rows that do not record the condition neither extend nor end it); else blank",
)
def _hours_held(c: Compiler, n: Call) -> Compiled:
    # criteria §6.0.4 step 2: durations of vasopressor support and of high doses
    # from timed assessments, elapsed so far (earlier rows only, never later ones)
    if not c.row_level:
        raise c.fail("hours_held() reads the timed rows of the course: use it in a row value", n)
    x = c.arg(n, 0, BOOL)
    clock = day().cast(pl.Float64) * 24 + pl.col(TIME).cast(pl.Float64) / 3600
    state = pl.when(clock.is_not_null()).then(x.expr)  # untimed rows do not count
    before = course_shift(course_forward_fill(state))  # the last recorded state before this row
    starts = state.fill_null(False) & ~before.fill_null(False)
    started = course_forward_fill(pl.when(starts).then(clock))
    return combined(pl.when(state.fill_null(False)).then(clock - started), NUM, "day", x)


@function("recent", (2, 2), "recent(x, days): x on this day, else its latest value from the given number of days before")
def _recent(c: Compiler, n: Call) -> Compiled:
    # criteria §7.4: a laboratory value is current for lab_window_days days after it was measured
    x = c.arg(n, 0)
    window = float(c.constant_arg(n, 1))  # type: ignore[arg-type]
    measured_day = course_forward_fill(pl.when(x.expr.is_not_null()).then(day()))
    value = course_forward_fill(x.expr)
    return combined(pl.when(day() - measured_day <= window).then(value), x.type, "day", x, values=x.values, inexact=x.inexact)


# -- reading later days too --


@function("nearest", (2, 2), "nearest(x, days): x from this day, else the nearest day within +/- days", causal=False)
def _nearest(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    window = c.constant_arg(n, 1)
    value = nearest_parts(x.expr, float(window))[0]  # type: ignore[arg-type]
    return combined(value, x.type, "day", x, values=x.values, inexact=x.inexact)


@function("nearest_day", (2, 2), "the day nearest(x, days) took its value from", causal=False)
def _nearest_day(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    window = c.constant_arg(n, 1)
    return combined(nearest_parts(x.expr, float(window))[1], NUM, "day", x)  # type: ignore[arg-type]


# -- course aggregates (one value per course, given to every day) --


def _where(c: Compiler, n: Call, i: int) -> pl.Expr:
    if len(n.args) > i:
        return c.arg(n, i, BOOL).expr.fill_null(False)
    return pl.lit(True)


def _aggregate(expr: pl.Expr, type_: str, x: Compiled | None = None) -> Compiled:
    return Compiled(over_course(expr), type_, "course", x.values if x else None, inexact=bool(x and x.inexact and type_ != BOOL))


@function("max", (1, 2), "max(x [, where]): the course's largest recorded value", causal=False)
def _max(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    return _aggregate(pl.when(_where(c, n, 1)).then(x.expr).max(), NUM, x)


@function("min", (1, 2), "min(x [, where]): the course's smallest recorded value", causal=False)
def _min(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    return _aggregate(pl.when(_where(c, n, 1)).then(x.expr).min(), NUM, x)


@function("count", (1, 1), "count(condition): number of days of the course on which it holds", causal=False)
def _count(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return _aggregate(as_count(x.expr).sum(), NUM)


@function("any", (1, 1), "any(condition): it held on some day of the course", causal=False)
def _any(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return Compiled(over_course(as_count(x.expr).sum()) > 0, BOOL, "course")


@function("first_day", (1, 1), "first day of the course on which the condition holds", causal=False)
def _first_day(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return _aggregate(pl.when(x.expr.fill_null(False)).then(day()).min(), NUM)


@function("last_day", (1, 1), "last day of the course on which the condition holds", causal=False)
def _last_day(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return _aggregate(pl.when(x.expr.fill_null(False)).then(day()).max(), NUM)


def _value_on(x: Compiled, where: pl.Expr, pick: str) -> pl.Expr:
    held = where & x.expr.is_not_null()
    chosen_day = over_course(pl.when(held).then(day()).min() if pick == "first" else pl.when(held).then(day()).max())
    return pl.when(held & (day() == chosen_day)).then(x.expr).max()


@function("first", (1, 2), "first(x [, where]): x on the first day it was recorded (where the condition holds)", causal=False)
def _first(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    return _aggregate(_value_on(x, _where(c, n, 1), "first"), x.type, x)


@function("last", (1, 2), "last(x [, where]): x on the last day it was recorded (where the condition holds)", causal=False)
def _last(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    return _aggregate(_value_on(x, _where(c, n, 1), "last"), x.type, x)


@function("day_of_max", (1, 2), "day_of_max(x [, where]): earliest day of the course's largest value", causal=False)
def _day_of_max(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    where = _where(c, n, 1)
    top = over_course(pl.when(where).then(x.expr).max())
    return _aggregate(pl.when(where & (x.expr == top)).then(day()).min(), NUM)


@function(
    "best",
    (2, 3),
    "best(x, [best, ..., worst] [, where]): the best value the course reached, by the order given",
    causal=False,
)
def _best(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    if not isinstance(n.args[1], ListOf):
        raise c.fail("best() needs a list of values from best to worst as its second argument", n.args[1])
    order = []
    for item in n.args[1].items:
        v = c.compile(item)
        if not v.is_constant:
            raise c.fail("best() needs fixed values in its list", item)
        c._check_enum(x, item, v)
        order.append(v.constant)
    rank = x.expr.replace_strict(order, list(range(len(order))), default=None, return_dtype=pl.Int32)
    top = over_course(pl.when(_where(c, n, 2)).then(rank).min())
    value = top.replace_strict(list(range(len(order))), order, default=None)
    return Compiled(value, x.type, "course", x.values)


@function(
    "auc",
    (3, 3),
    "auc(x, from_day, to_day): area under x over the days, linear trapezoid while rising or level, "
    "log trapezoid while falling; the from_day level is 0 when not measured; the to_day level is "
    "interpolated; null when nothing was measured on or after to_day",
    causal=False,
)
def _auc(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    start = float(c.constant_arg(n, 1))  # type: ignore[arg-type]
    end = float(c.constant_arg(n, 2))  # type: ignore[arg-type]
    return Compiled(auc_expr(x.expr.cast(pl.Float64), start, end), NUM, "course", inexact=True)


# the counting functions (days below a threshold, episodes) register themselves on import
from carscore import countfunctions as _countfunctions  # noqa: E402,F401
