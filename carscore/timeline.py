"""Column operations along each course's timeline.

The table of days is sorted by course, then day. Timeline functions therefore
run as plain whole-column operations, cut where one course ends and the next
begins, which is far cheaper than per-course windows for chained operations.
"""

from __future__ import annotations

import polars as pl

from carscore.compile import COURSE, DAY


def over_course(expr: pl.Expr) -> pl.Expr:
    return expr.over(COURSE)


def day() -> pl.Expr:
    return pl.col(DAY)


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


def as_count(e: pl.Expr) -> pl.Expr:
    """A condition as 0/1, with 'not recorded' counted as not holding."""
    return e.fill_null(False).cast(pl.Int32)


def nearest_parts(x: pl.Expr, window: float) -> tuple[pl.Expr, pl.Expr]:
    """Value of x on this day, else on the nearest day within +/- window days
    (the earlier day on a tie), and the day it came from."""
    measured_day = pl.when(x.is_not_null()).then(day())
    prev_day = course_forward_fill(measured_day)
    next_day = course_backward_fill(measured_day)
    prev_val = course_forward_fill(x)
    next_val = course_backward_fill(x)
    before = day() - prev_day
    after = next_day - day()
    use_prev = (before <= window) & (after.is_null() | (before <= after))
    use_next = after <= window
    value = pl.when(x.is_not_null()).then(x).when(use_prev).then(prev_val).when(use_next).then(next_val)
    source = pl.when(x.is_not_null()).then(day()).when(use_prev).then(prev_day).when(use_next).then(next_day)
    return value, source
