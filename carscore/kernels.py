"""Numeric kernels for the functions that need a whole course at once (areas
under a curve, days below a threshold with interpolation). Rows arrive
sorted by course, then day; each kernel is vectorised over every course."""

from __future__ import annotations

import numpy as np
import polars as pl

from carscore.compile import COURSE, DAY, RELATIVE_TOLERANCE


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

    return pl.struct(pl.col(COURSE).alias("c"), pl.col(DAY).alias("d"), x.alias("x")).map_batches(run, return_dtype=pl.Float64)


def low_days_series(
    course: np.ndarray,
    day: np.ndarray,
    x: np.ndarray,
    threshold: float,
    start: np.ndarray,
    end: np.ndarray,
    recovery: float,
    strict: bool,
) -> pl.Series:
    """Days of each course's window [start, end] on which x is below the
    threshold (x <= threshold, or x < threshold when ``strict``), counted by
    the ICAHT rule (criteria §5 and §7.0):

    1. anchors are the days in the window with a measured value; a day between
       two anchors takes the value interpolated linearly between them; days
       before the first or after the last anchor are not counted;
    2. an episode starts on a day below and ends at the first run of
       ``recovery`` consecutive days above, which is not counted; shorter runs
       above between days below (non-stable recovery) are counted;
    3. a run above that reaches the last anchor is not counted;
    4. the total is cumulative over the window.

    Null for a course with no anchor in its window."""
    index, k = _course_index(course)
    inside = ~np.isnan(x) & (day >= start) & (day <= end)
    m = np.flatnonzero(inside)
    measured = np.zeros(k, dtype=bool)
    if not len(m):
        return _per_row(np.zeros(k), measured, index)
    cm, dm, xm = index[m], day[m], x[m]
    measured[cm] = True
    # anchor i covers the days up to the next anchor of its course; the last
    # anchor of a course covers its own day only
    joined = np.r_[cm[1:] == cm[:-1], False]
    span = np.where(joined, np.r_[dm[1:] - dm[:-1], 1], 1).astype(np.int64)
    segment = np.repeat(np.arange(len(m)), span)
    offset = np.arange(len(segment)) - np.repeat(np.cumsum(span) - span, span)
    following = np.r_[xm[1:], np.nan]
    fraction = offset / span[segment]
    value = np.where(joined[segment], xm[segment] + (following[segment] - xm[segment]) * fraction, xm[segment])
    slack = np.maximum(np.abs(value), abs(threshold)) * RELATIVE_TOLERANCE
    below = value < threshold - slack if strict else value <= threshold + slack
    grid_course = cm[segment]
    change = np.r_[True, (grid_course[1:] != grid_course[:-1]) | (below[1:] != below[:-1])]
    run_start = np.flatnonzero(change)
    run_length = np.diff(np.r_[run_start, len(below)])
    run_course = grid_course[run_start]
    opens_course = np.r_[True, run_course[1:] != run_course[:-1]]
    closes_course = np.r_[run_course[1:] != run_course[:-1], True]
    # runs alternate below/above, so a run above that neither opens nor closes
    # its course lies between days below
    counted = below[run_start] | ((run_length < recovery) & ~opens_course & ~closes_course)
    total = np.bincount(run_course, weights=np.where(counted, run_length, 0), minlength=k)
    return _per_row(total, measured, index)


def low_days_expr(x: pl.Expr, threshold: float, start: pl.Expr, end: pl.Expr, recovery: float, strict: bool) -> pl.Expr:
    def run(s: pl.Series) -> pl.Series:
        return low_days_series(
            s.struct.field("c").to_numpy(),
            s.struct.field("d").cast(pl.Float64).to_numpy(),
            s.struct.field("x").cast(pl.Float64).fill_null(np.nan).to_numpy(),
            threshold,
            s.struct.field("a").cast(pl.Float64).fill_null(np.nan).to_numpy(),
            s.struct.field("b").cast(pl.Float64).fill_null(np.nan).to_numpy(),
            recovery,
            strict,
        )

    fields = [pl.col(COURSE).alias("c"), pl.col(DAY).alias("d"), x.alias("x"), start.alias("a"), end.alias("b")]
    return pl.struct(fields).map_batches(run, return_dtype=pl.Float64)
