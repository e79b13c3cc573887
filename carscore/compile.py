"""Compile parsed conditions into polars column expressions.

Every rule compiles once into an expression over the whole table of
patient-days (sorted by course, then day), so that one pass grades a cohort.
Functions that look along a course's timeline (``ever``, ``nearest``, ...)
become window expressions partitioned by course; course aggregates
(``max``, ``first_day``, ``auc``, ...) are broadcast back to every day of the
course, so day rules may use them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from carscore.expr import (
    Binary,
    Call,
    ExprSyntaxError,
    ListOf,
    Literal,
    Membership,
    Name,
    Node,
    Unary,
)

COURSE = "_course"
DAY = "day"

NUM, BOOL, TEXT, ANY = "number", "boolean", "text", "any"


@dataclass(frozen=True)
class Symbol:
    """What a name means inside a rule: its column expression and kind."""

    expr: pl.Expr
    type: str = ANY
    level: str = "day"  # "day" or "course"
    values: tuple[str, ...] | None = None  # enum words, for checking literals
    constant: object = None  # parameters: the value itself
    is_constant: bool = False


@dataclass(frozen=True)
class Compiled:
    expr: pl.Expr
    type: str
    level: str
    values: tuple[str, ...] | None = None
    constant: object = None
    is_constant: bool = False


class CompileError(ExprSyntaxError):
    pass


Resolver = Callable[[str], Symbol | None]


def value_type(v: object) -> str:
    """The kind of a fixed value written in a rule (a literal or a parameter)."""
    if v is None:
        return ANY
    if isinstance(v, bool):
        return BOOL
    if isinstance(v, (int, float)):
        return NUM
    return TEXT


def _course(expr: pl.Expr) -> pl.Expr:
    return expr.over(COURSE)


# The table is sorted by course, then day. Timeline functions therefore run as
# plain whole-column operations, cut where one course ends and the next begins,
# which is far cheaper than per-course windows for chained operations.


def course_start() -> pl.Expr:
    """True on the first row of each course."""
    c = pl.col(COURSE)
    return (c != c.shift(1)).fill_null(True)


def course_cum_sum(counts: pl.Expr, restart: pl.Expr | None = None) -> pl.Expr:
    """Running sum within each course (and within segments that start where
    ``restart`` holds)."""
    starts = course_start() if restart is None else course_start() | restart
    total = counts.cum_sum()
    base = pl.when(starts).then(total - counts).forward_fill()
    return total - base


def course_shift(e: pl.Expr) -> pl.Expr:
    """The previous row's value within the course."""
    return pl.when(course_start()).then(None).otherwise(e.shift(1))


def course_forward_fill(e: pl.Expr) -> pl.Expr:
    owner = pl.when(e.is_not_null()).then(pl.col(COURSE)).forward_fill()
    return pl.when(owner == pl.col(COURSE)).then(e.forward_fill())


def course_backward_fill(e: pl.Expr) -> pl.Expr:
    owner = pl.when(e.is_not_null()).then(pl.col(COURSE)).backward_fill()
    return pl.when(owner == pl.col(COURSE)).then(e.backward_fill())


def _flag(e: pl.Expr) -> pl.Expr:
    """A condition as 0/1, with 'not recorded' counted as not holding."""
    return e.fill_null(False).cast(pl.Int32)


def _day() -> pl.Expr:
    return pl.col(DAY)


class Compiler:
    def __init__(self, resolve: Resolver):
        self.resolve = resolve

    def fail(self, message: str, node: Node) -> CompileError:
        return CompileError(message, node.pos)

    def compile(self, node: Node) -> Compiled:
        method = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    # -- atoms --
    def _literal(self, node: Literal) -> Compiled:
        v = node.value
        return Compiled(pl.lit(v), value_type(v), "course", constant=v, is_constant=True)

    def _name(self, node: Name) -> Compiled:
        sym = self.resolve(node.name)
        if sym is None:
            raise self.fail(f"unknown name '{node.name}' (not a column, parameter or defined value)", node)
        return Compiled(sym.expr, sym.type, sym.level, sym.values, sym.constant, sym.is_constant)

    def _listof(self, node: ListOf) -> Compiled:
        raise self.fail("a list is only allowed after 'in' or as a function argument", node)

    # -- operators --
    def _unary(self, node: Unary) -> Compiled:
        x = self.compile(node.operand)
        if node.op == "not":
            self._want(x, BOOL, node.operand, "'not'")
            return Compiled(~x.expr, BOOL, x.level)
        self._want(x, NUM, node.operand, "'-'")
        return Compiled(-x.expr, NUM, x.level, constant=-x.constant if x.is_constant else None, is_constant=x.is_constant)

    def _binary(self, node: Binary) -> Compiled:
        a, b = self.compile(node.left), self.compile(node.right)
        level = "day" if "day" in (a.level, b.level) else "course"
        op = node.op
        if op in ("and", "or"):
            self._want(a, BOOL, node.left, f"'{op}'")
            self._want(b, BOOL, node.right, f"'{op}'")
            return Compiled(a.expr & b.expr if op == "and" else a.expr | b.expr, BOOL, level)
        if op in ("+", "-", "*", "/"):
            self._want(a, NUM, node.left, f"'{op}'")
            self._want(b, NUM, node.right, f"'{op}'")
            ea, eb = a.expr, b.expr
            if op == "/":
                ea = ea.cast(pl.Float64)
            expr = {"+": ea + eb, "-": ea - eb, "*": ea * eb, "/": ea / eb}[op]
            return Compiled(expr, NUM, level)
        # comparisons
        if op in ("<", "<=", ">", ">="):
            self._want(a, NUM, node.left, f"'{op}'")
            self._want(b, NUM, node.right, f"'{op}'")
        else:
            self._check_enum(a, node.right, b)
            self._check_enum(b, node.left, a)
            if ANY not in (a.type, b.type) and a.type != b.type:
                raise self.fail(f"cannot compare a {a.type} with a {b.type}", node)
        ea, eb = a.expr, b.expr
        expr = {
            "==": ea == eb,
            "!=": ea != eb,
            "<": ea < eb,
            "<=": ea <= eb,
            ">": ea > eb,
            ">=": ea >= eb,
        }[op]
        return Compiled(expr, BOOL, level)

    def _membership(self, node: Membership) -> Compiled:
        x = self.compile(node.operand)
        options = [self.compile(item) for item in node.options.items]
        for item, c in zip(node.options.items, options):
            if not c.is_constant:
                raise self.fail("the list after 'in' must hold fixed values or parameters", item)
            self._check_enum(x, item, c)
        values = [c.constant for c in options]
        if not values:
            raise self.fail("the list after 'in' is empty", node.options)
        kinds = {type(v) is bool for v in values}, {isinstance(v, str) for v in values}
        if len(kinds[0]) > 1 or len(kinds[1]) > 1:
            raise self.fail("the list after 'in' must hold values of one kind", node.options)
        subject = x.expr
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            # compare as numbers whatever the column's integer or decimal type
            subject, values = subject.cast(pl.Float64), [float(v) for v in values]
        expr = subject.is_in(values)
        # 'x in [...]' is unknown when x was not recorded, like '=='
        expr = pl.when(x.expr.is_null()).then(None).otherwise(expr)
        return Compiled(~expr if node.negated else expr, BOOL, x.level)

    def _want(self, c: Compiled, kind: str, node: Node, where: str) -> None:
        if c.type not in (kind, ANY):
            raise self.fail(f"{where} needs a {kind}, but this is a {c.type}", node)

    def _check_enum(self, column: Compiled, node: Node, other: Compiled) -> None:
        if column.values and other.is_constant and isinstance(other.constant, str):
            if other.constant not in column.values:
                raise self.fail(f"'{other.constant}' is not one of the values: {', '.join(column.values)}", node)

    # -- functions --
    def _call(self, node: Call) -> Compiled:
        spec = FUNCTIONS.get(node.func)
        if spec is None:
            raise self.fail(f"unknown function '{node.func}'; known: {', '.join(sorted(FUNCTIONS))}", node)
        lo, hi = spec.arity
        if not lo <= len(node.args) <= hi:
            count = f"{lo}" if lo == hi else f"{lo} to {hi}"
            noun = "argument" if count == "1" else "arguments"
            raise self.fail(f"{node.func}() takes {count} {noun}, {len(node.args)} given", node)
        return spec.build(self, node)

    def arg(self, node: Call, i: int, kind: str = ANY) -> Compiled:
        c = self.compile(node.args[i])
        if kind != ANY:
            self._want(c, kind, node.args[i], f"{node.func}()")
        return c

    def constant_arg(self, node: Call, i: int, kind: str = NUM) -> object:
        c = self.arg(node, i, kind)
        if not c.is_constant:
            raise self.fail(f"{node.func}() needs a fixed value or parameter here", node.args[i])
        return c.constant


@dataclass(frozen=True)
class Function:
    arity: tuple[int, int]
    build: Callable[[Compiler, Call], Compiled]
    doc: str


FUNCTIONS: dict[str, Function] = {}

# Functions that look at one day only; every other function reads along the
# course's timeline and must see all of the course's days.
SAME_DAY_FUNCTIONS = frozenset({"recorded", "any_recorded", "coalesce", "greatest", "least", "abs", "round", "if", "yes"})


def reads_timeline(node: Node) -> bool:
    """Whether a parsed expression calls a function that reads other days."""
    if isinstance(node, Call):
        return node.func not in SAME_DAY_FUNCTIONS or any(reads_timeline(a) for a in node.args)
    if isinstance(node, Unary):
        return reads_timeline(node.operand)
    if isinstance(node, Binary):
        return reads_timeline(node.left) or reads_timeline(node.right)
    if isinstance(node, Membership):
        return reads_timeline(node.operand)
    if isinstance(node, ListOf):
        return any(reads_timeline(i) for i in node.items)
    return False


def function(name: str, arity: tuple[int, int], doc: str):
    def register(build: Callable[[Compiler, Call], Compiled]):
        FUNCTIONS[name] = Function(arity, build, doc)
        return build

    return register


def _level(*cs: Compiled) -> str:
    return "day" if any(c.level == "day" for c in cs) else "course"


# -- values of one day --


@function("recorded", (1, 1), "true when the value was recorded (not blank)")
def _recorded(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    return Compiled(x.expr.is_not_null(), BOOL, x.level)


@function("any_recorded", (1, 99), "true when any of the values was recorded")
def _any_recorded(c: Compiler, n: Call) -> Compiled:
    xs = [c.arg(n, i) for i in range(len(n.args))]
    return Compiled(pl.any_horizontal([x.expr.is_not_null() for x in xs]), BOOL, _level(*xs))


@function("coalesce", (2, 99), "the first value that was recorded")
def _coalesce(c: Compiler, n: Call) -> Compiled:
    xs = [c.arg(n, i) for i in range(len(n.args))]
    types = {x.type for x in xs} - {ANY}
    if len(types) > 1:
        raise c.fail("coalesce() needs values of one kind", n)
    return Compiled(pl.coalesce([x.expr for x in xs]), types.pop() if types else ANY, _level(*xs))


@function("greatest", (2, 99), "the largest of the recorded values")
def _greatest(c: Compiler, n: Call) -> Compiled:
    xs = [c.arg(n, i, NUM) for i in range(len(n.args))]
    return Compiled(pl.max_horizontal([x.expr for x in xs]), NUM, _level(*xs))


@function("least", (2, 99), "the smallest of the recorded values")
def _least(c: Compiler, n: Call) -> Compiled:
    xs = [c.arg(n, i, NUM) for i in range(len(n.args))]
    return Compiled(pl.min_horizontal([x.expr for x in xs]), NUM, _level(*xs))


@function("abs", (1, 1), "absolute value")
def _abs(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    return Compiled(x.expr.abs(), NUM, x.level)


@function("round", (2, 2), "round(x, digits): for reason texts")
def _round(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    digits = c.constant_arg(n, 1)
    return Compiled(x.expr.cast(pl.Float64).round(int(digits)), NUM, x.level)  # type: ignore[arg-type]


@function("if", (3, 3), "if(condition, value when true, value otherwise)")
def _if(c: Compiler, n: Call) -> Compiled:
    cond, a, b = c.arg(n, 0, BOOL), c.arg(n, 1), c.arg(n, 2)
    types = {a.type, b.type} - {ANY}
    if len(types) > 1:
        raise c.fail("if() needs both values of one kind", n)
    expr = pl.when(cond.expr).then(a.expr).otherwise(b.expr)
    return Compiled(expr, types.pop() if types else ANY, _level(cond, a, b), a.values or b.values)


@function("yes", (1, 1), "true only when the condition holds (not recorded counts as no)")
def _yes(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return Compiled(x.expr.fill_null(False), BOOL, x.level)


# -- looking along a course's timeline --


@function("ever", (1, 1), "the condition held on this day or an earlier day of the course")
def _ever(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return Compiled(course_cum_sum(_flag(x.expr)) > 0, BOOL, "day")


@function("ever_before", (1, 1), "the condition held on an earlier day of the course")
def _ever_before(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return Compiled(course_cum_sum(_flag(x.expr)) - _flag(x.expr) > 0, BOOL, "day")


@function(
    "ever_since",
    (2, 2),
    "ever_since(condition, reset): the condition held on some day since the last reset day (a reset day starts afresh)",
)
def _ever_since(c: Compiler, n: Call) -> Compiled:
    x, reset = c.arg(n, 0, BOOL), c.arg(n, 1, BOOL)
    return Compiled(course_cum_sum(_flag(x.expr), reset.expr.fill_null(False)) > 0, BOOL, "day")


@function("is_first", (1, 1), "the first day of the course on which the condition holds")
def _is_first(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    held = x.expr.fill_null(False)
    return Compiled(held & (course_cum_sum(_flag(x.expr)) == 1), BOOL, "day")


@function("consecutive_days", (1, 1), "how many days in a row, up to this one, the condition has held")
def _consecutive(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    held = _flag(x.expr)
    # a day with no row breaks the run, as a day on which it did not hold
    gap = (_day() - course_shift(_day())).fill_null(1) != 1
    return Compiled(course_cum_sum(held, (held == 0) | gap), NUM, "day")


def nearest_parts(x: pl.Expr, window: float) -> tuple[pl.Expr, pl.Expr]:
    """Value of x on this day, else on the nearest day within +/- window days
    (the earlier day on a tie), and the day it came from."""
    measured_day = pl.when(x.is_not_null()).then(_day())
    prev_day = course_forward_fill(measured_day)
    next_day = course_backward_fill(measured_day)
    prev_val = course_forward_fill(x)
    next_val = course_backward_fill(x)
    before = _day() - prev_day
    after = next_day - _day()
    use_prev = (before <= window) & (after.is_null() | (before <= after))
    use_next = after <= window
    value = pl.when(x.is_not_null()).then(x).when(use_prev).then(prev_val).when(use_next).then(next_val)
    source = pl.when(x.is_not_null()).then(_day()).when(use_prev).then(prev_day).when(use_next).then(next_day)
    return value, source


@function("nearest", (2, 2), "nearest(x, days): x from this day, else the nearest day within +/- days")
def _nearest(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    window = c.constant_arg(n, 1)
    return Compiled(nearest_parts(x.expr, float(window))[0], x.type, "day", x.values)  # type: ignore[arg-type]


@function("nearest_day", (2, 2), "the day nearest(x, days) took its value from")
def _nearest_day(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    window = c.constant_arg(n, 1)
    return Compiled(nearest_parts(x.expr, float(window))[1], NUM, "day")  # type: ignore[arg-type]


@function("previous", (1, 1), "the last value recorded on an earlier day of the course")
def _previous(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    return Compiled(course_forward_fill(course_shift(x.expr)), x.type, "day", x.values)


# -- course aggregates (one value per course, given to every day) --


def _where(c: Compiler, n: Call, i: int) -> pl.Expr:
    if len(n.args) > i:
        return c.arg(n, i, BOOL).expr.fill_null(False)
    return pl.lit(True)


@function("max", (1, 2), "max(x [, where]): the course's largest recorded value")
def _max(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    return Compiled(_course(pl.when(_where(c, n, 1)).then(x.expr).max()), NUM, "course")


@function("min", (1, 2), "min(x [, where]): the course's smallest recorded value")
def _min(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    return Compiled(_course(pl.when(_where(c, n, 1)).then(x.expr).min()), NUM, "course")


@function("count", (1, 1), "count(condition): number of days of the course on which it holds")
def _count(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return Compiled(_course(_flag(x.expr).sum()), NUM, "course")


@function("any", (1, 1), "any(condition): it held on some day of the course")
def _any(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return Compiled(_course(_flag(x.expr).sum()) > 0, BOOL, "course")


@function("first_day", (1, 1), "first day of the course on which the condition holds")
def _first_day(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return Compiled(_course(pl.when(x.expr.fill_null(False)).then(_day()).min()), NUM, "course")


@function("last_day", (1, 1), "last day of the course on which the condition holds")
def _last_day(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    return Compiled(_course(pl.when(x.expr.fill_null(False)).then(_day()).max()), NUM, "course")


def _value_on(x: Compiled, where: pl.Expr, pick: str) -> pl.Expr:
    held = where & x.expr.is_not_null()
    chosen_day = _course(pl.when(held).then(_day()).min() if pick == "first" else pl.when(held).then(_day()).max())
    return _course(pl.when(held & (_day() == chosen_day)).then(x.expr).max())


@function("first", (1, 2), "first(x [, where]): x on the first day it was recorded (where the condition holds)")
def _first(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    return Compiled(_value_on(x, _where(c, n, 1), "first"), x.type, "course", x.values)


@function("last", (1, 2), "last(x [, where]): x on the last day it was recorded (where the condition holds)")
def _last(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0)
    return Compiled(_value_on(x, _where(c, n, 1), "last"), x.type, "course", x.values)


@function("day_of_max", (1, 2), "day_of_max(x [, where]): earliest day of the course's largest value")
def _day_of_max(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    where = _where(c, n, 1)
    top = _course(pl.when(where).then(x.expr).max())
    return Compiled(_course(pl.when(where & (x.expr == top)).then(_day()).min()), NUM, "course")


@function(
    "best",
    (2, 3),
    "best(x, [best, ..., worst] [, where]): the best value the course reached, by the order given",
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
    top = _course(pl.when(_where(c, n, 2)).then(rank).min())
    value = top.replace_strict(list(range(len(order))), order, default=None)
    return Compiled(value, x.type, "course", x.values)


@function(
    "auc",
    (3, 3),
    "auc(x, from_day, to_day): area under x over the days, linear trapezoid while rising or level, "
    "log trapezoid while falling; the from_day level is 0 when not measured; the to_day level is "
    "interpolated; null when nothing was measured on or after to_day",
)
def _auc(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, NUM)
    start = float(c.constant_arg(n, 1))  # type: ignore[arg-type]
    end = float(c.constant_arg(n, 2))  # type: ignore[arg-type]
    return Compiled(auc_expr(x.expr.cast(pl.Float64), start, end), NUM, "course")


def _course_index(course: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense 0..k-1 index of each row's course (rows sorted by course)."""
    if len(course) == 0:
        return course.astype(np.int64), 0
    change = np.r_[True, course[1:] != course[:-1]]
    index = np.cumsum(change) - 1
    return index, int(index[-1]) + 1


def _per_row(values: np.ndarray, defined: np.ndarray, index: np.ndarray) -> pl.Series:
    out = np.where(defined[index], values[index], np.nan)
    return pl.Series(out, dtype=pl.Float64).fill_nan(None)


def auc_series(course: np.ndarray, day: np.ndarray, x: np.ndarray, start: float, end: float) -> pl.Series:
    """Linear-up/log-down AUC from ``start`` to ``end`` for every course, given
    to each of its rows. Rows are sorted by course and day; x is NaN when not
    measured. The start level is 0 when not measured; the end level is
    interpolated (log-linear when falling, linear when rising); NaN (null)
    when nothing was measured on or after ``end``."""
    index, k = _course_index(course)
    measured = ~np.isnan(x) & (day >= start)
    m = np.flatnonzero(measured)
    cm, t2, c2 = index[m], day[m], x[m]
    same = np.r_[False, cm[1:] == cm[:-1]] if len(m) else np.zeros(0, bool)
    t1 = np.where(same, np.r_[np.nan, t2[:-1]] if len(m) else t2, start)
    c1 = np.where(same, np.r_[np.nan, c2[:-1]] if len(m) else c2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        falling = (c2 < c1) & (c2 > 0)
        frac = (end - t1) / (t2 - t1)
        c_end = np.where(falling, c1 * np.power(np.where(c1 > 0, c2 / c1, 1.0), frac), c1 + (c2 - c1) * frac)
        past_end = t2 > end
        t2c = np.where(past_end, end, t2)
        c2c = np.where(past_end, c_end, c2)
        dt = t2c - t1
        log_area = (c1 - c2c) * dt / np.log(c1 / c2c)
        lin_area = (c1 + c2c) / 2 * dt
        area = np.where(falling & (c1 != c2c), log_area, lin_area)
    area = np.where((t1 < end) & (dt > 0), area, 0.0)
    total = np.bincount(cm, weights=area, minlength=k)
    reached = np.zeros(k, dtype=bool)
    reached[cm[t2 >= end]] = True
    return _per_row(total, reached, index)


def auc_expr(x: pl.Expr, start: float, end: float) -> pl.Expr:
    def run(s: pl.Series) -> pl.Series:
        course = s.struct.field("c").to_numpy()
        day = s.struct.field("d").cast(pl.Float64).to_numpy()
        values = s.struct.field("x").cast(pl.Float64).fill_null(np.nan).to_numpy()
        return auc_series(course, day, values, start, end)

    return pl.struct(pl.col(COURSE).alias("c"), _day().alias("d"), x.alias("x")).map_batches(run, return_dtype=pl.Float64)


def duration_series(course: np.ndarray, day: np.ndarray, held: np.ndarray, refuted: np.ndarray, recovery: float) -> pl.Series:
    """Days on which a condition holds per course. The days between two such
    days count too, unless the condition was seen not to hold on ``recovery``
    consecutive days in between (a documented, stable recovery)."""
    index, k = _course_index(course)
    # runs of consecutive calendar days on which the condition was measured and did not hold
    r = np.flatnonzero(refuted)
    cr, dr = index[r], day[r]
    follows = np.r_[False, (cr[1:] == cr[:-1]) & (dr[1:] - dr[:-1] == 1)] if len(r) else np.zeros(0, bool)
    run = np.ones(len(r))
    starts = np.flatnonzero(~follows)
    if len(r):
        run = np.arange(len(r)) - np.repeat(starts, np.diff(np.r_[starts, len(r)])) + 1
    recovered = np.zeros(len(day))
    recovered[r[run == recovery]] = 1
    recoveries = np.cumsum(recovered)
    h = np.flatnonzero(held)
    ch, dh, rh = index[h], day[h], recoveries[h]
    same = np.r_[False, ch[1:] == ch[:-1]] if len(h) else np.zeros(0, bool)
    gap = np.where(same, dh - np.r_[np.nan, dh[:-1]] - 1 if len(h) else dh, 0)
    no_recovery = np.r_[False, rh[1:] == rh[:-1]] if len(h) else np.zeros(0, bool)
    bridged = np.where(same & no_recovery & (gap > 0), gap, 0)
    total = np.bincount(ch, weights=1 + bridged, minlength=k)
    return _per_row(total, np.ones(k, dtype=bool), index)


@function(
    "duration",
    (4, 4),
    "duration(condition, from_day, to_day, recovery): days from from_day to to_day on which the "
    "condition holds, with the days between two such days unless it was seen not to hold on "
    "`recovery` consecutive days in between",
)
def _duration(c: Compiler, n: Call) -> Compiled:
    x = c.arg(n, 0, BOOL)
    start = c.constant_arg(n, 1)
    end = c.constant_arg(n, 2)
    recovery = c.constant_arg(n, 3)
    inside = (_day() >= start) & (_day() <= end)
    held = x.expr.fill_null(False) & inside
    refuted = (x.expr == False).fill_null(False) & inside  # noqa: E712 - measured and not holding

    def run(series: pl.Series) -> pl.Series:
        return duration_series(
            series.struct.field("c").to_numpy(),
            series.struct.field("d").cast(pl.Float64).to_numpy(),
            series.struct.field("h").to_numpy(),
            series.struct.field("r").to_numpy(),
            float(recovery),  # type: ignore[arg-type]
        )

    expr = pl.struct(pl.col(COURSE).alias("c"), _day().alias("d"), held.alias("h"), refuted.alias("r")).map_batches(
        run, return_dtype=pl.Float64
    )
    return Compiled(expr, NUM, "course")
