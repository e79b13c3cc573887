"""Numeric kernels for the functions that need a whole course at once (areas
under a curve, days below a threshold with interpolation). Rows arrive
sorted by course, then day; each kernel is vectorised over every course.
numpy is imported by each kernel when it runs, not when rules are compiled:
it would add a tenth of a second to the start of every command."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from carscore.compile import COURSE, DAY, RELATIVE_TOLERANCE

if TYPE_CHECKING:
    import numpy as np


def _course_index(course: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense 0..k-1 index of each row's course (rows sorted by course)."""
    import numpy as np

    if len(course) == 0:
        return course.astype(np.int64), 0
    change = np.r_[True, course[1:] != course[:-1]]
    index = np.cumsum(change) - 1
    return index, int(index[-1]) + 1


def _per_row(values: np.ndarray, defined: np.ndarray, index: np.ndarray) -> pl.Series:
    import numpy as np

    out = np.where(defined[index], values[index], np.nan)
    return pl.Series(out, dtype=pl.Float64).fill_nan(None)


def auc_series(course: np.ndarray, day: np.ndarray, x: np.ndarray, start: float, end: float) -> pl.Series:
    """Linear-up/log-down AUC from ``start`` to ``end`` for every course, given
    to each of its rows. Rows are sorted by course and day; x is NaN when not
    measured. The start level is 0 when not measured; the end level is
    interpolated (log-linear when falling, linear when rising); NaN (null)
    when nothing was measured on or after ``end``."""
    import numpy as np

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
        import numpy as np

        course = s.struct.field("c").to_numpy()
        day = s.struct.field("d").cast(pl.Float64).to_numpy()
        values = s.struct.field("x").cast(pl.Float64).fill_null(np.nan).to_numpy()
        return auc_series(course, day, values, start, end)

    return pl.struct(pl.col(COURSE).alias("c"), pl.col(DAY).alias("d"), x.alias("x")).map_batches(run, return_dtype=pl.Float64)


def _grid(
    index: np.ndarray, day: np.ndarray, x: np.ndarray, inside: np.ndarray, threshold: float, strict: bool
) -> tuple[np.ndarray, ...]:
    """Every day from each course's first to last anchor (measured days where
    ``inside``), with the value interpolated between anchors and whether it is
    below the threshold. Also the anchor each grid day was read from."""
    import numpy as np

    m = np.flatnonzero(inside)
    cm, dm, xm = index[m], day[m], x[m]
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
    grid_day = dm[segment] + offset
    # a grid day is known once the anchor after it is measured (its own anchor for an anchor day)
    known = np.where(offset == 0, dm[segment], np.r_[dm[1:], np.nan][segment])
    return cm[segment], grid_day, below, known, cm


def _supported(
    grid_course: np.ndarray,
    grid_day: np.ndarray,
    index: np.ndarray,
    day: np.ndarray,
    transfused: np.ndarray | None,
    free_days: float,
) -> np.ndarray:
    """Grid days with a transfusion on that day or on the free_days - 1 days before it
    (transfusions on any day of the course count, before the window included)."""
    import numpy as np

    if transfused is None or not transfused.any():
        return np.zeros(len(grid_day), dtype=bool)
    t = np.flatnonzero(transfused)
    shift = 1e7  # course index and day in one sortable key (days lie well within +/- 1e6)
    keys = index[t] * shift + (day[t] + 1e6)
    wanted = grid_course * shift + (grid_day + 1e6)
    last = np.searchsorted(keys, wanted, side="right") - 1
    found = last >= 0
    last_course = np.where(found, index[t][np.maximum(last, 0)], -1)
    last_day = np.where(found, day[t][np.maximum(last, 0)], np.nan)
    return found & (last_course == grid_course) & (grid_day - last_day <= free_days - 1)


def _effective_below(grid_course: np.ndarray, below: np.ndarray, supported: np.ndarray, recovery: float) -> np.ndarray:
    """Criteria §7.0 transfusion rule: inside an episode a transfusion-supported
    day above the threshold counts as below and cannot recover; outside one it
    is an ordinary day above and never starts one. A supported day is inside
    an episode when a day below came before it (in its course) with no run of
    ``recovery`` unsupported days above since."""
    import numpy as np

    if not supported.any():
        return below
    n = len(below)
    hard_above = ~below & ~supported
    new_course = np.r_[True, grid_course[1:] != grid_course[:-1]]
    # length of the run of unsupported days above ending on each day (restarting with each course)
    position = np.arange(n)
    marker = np.where(~hard_above, position, np.where(new_course, position - 1, -1))
    last = np.maximum.accumulate(marker) if n else marker
    run = np.where(hard_above, position - last, 0)
    # segments from each day below (or course start) onwards: recovered once a run reaches `recovery`
    segment = np.cumsum(below | new_course)
    reached = (run >= recovery).astype(np.int64)
    reached_before = np.zeros(n, dtype=np.int64)
    if n:
        cum = np.cumsum(reached)
        seg_start = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
        base = np.repeat(cum[seg_start] - reached[seg_start], np.diff(np.r_[seg_start, n]))
        reached_before = cum - base
    # a day below has opened this segment unless the segment began at the course start
    opened = below[np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])]
    seg_opened = np.repeat(opened, np.diff(np.r_[np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]]), n]))
    return below | (supported & seg_opened & (reached_before == 0))


@dataclass(frozen=True)
class _Runs:
    """The days of every course's grid read as alternating runs below / above."""

    grid_course: np.ndarray
    known: np.ndarray  # the day each grid day is known (its anchor, or the next one)
    anchored: np.ndarray  # course indices of the anchors
    start: np.ndarray  # each run's first grid day
    length: np.ndarray
    course: np.ndarray
    below: np.ndarray  # whether each run is below
    opens_course: np.ndarray
    closes_course: np.ndarray


def _runs(
    index: np.ndarray,
    day: np.ndarray,
    x: np.ndarray,
    inside: np.ndarray,
    threshold: float,
    strict: bool,
    recovery: float,
    transfused: np.ndarray | None,
    free_days: float,
) -> _Runs:
    import numpy as np

    grid_course, grid_day, below, known, anchored = _grid(index, day, x, inside, threshold, strict)
    below = _effective_below(grid_course, below, _supported(grid_course, grid_day, index, day, transfused, free_days), recovery)
    change = np.r_[True, (grid_course[1:] != grid_course[:-1]) | (below[1:] != below[:-1])]
    start = np.flatnonzero(change)
    course = grid_course[start]
    return _Runs(
        grid_course,
        known,
        anchored,
        start,
        np.diff(np.r_[start, len(below)]),
        course,
        below[start],
        np.r_[True, course[1:] != course[:-1]],
        np.r_[course[1:] != course[:-1], True],
    )


def low_days_series(
    course: np.ndarray,
    day: np.ndarray,
    x: np.ndarray,
    threshold: float,
    start: np.ndarray,
    end: np.ndarray,
    recovery: float,
    strict: bool,
    transfused: np.ndarray | None = None,
    free_days: float = 7,
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
    4. the total is cumulative over the window;
    5. with ``transfused`` (a transfusion given that day), a day above with a
       transfusion in the ``free_days`` days up to it counts as below inside an
       episode and is ignored outside one (the platelet rule of §7.0).

    Null for a course with no anchor in its window."""
    import numpy as np

    index, k = _course_index(course)
    inside = ~np.isnan(x) & (day >= start) & (day <= end)
    measured = np.zeros(k, dtype=bool)
    if not inside.any():
        return _per_row(np.zeros(k), measured, index)
    r = _runs(index, day, x, inside, threshold, strict, recovery, transfused, free_days)
    measured[r.anchored] = True
    # runs alternate below/above, so a run above that neither opens nor closes
    # its course lies between days below
    counted = r.below | ((r.length < recovery) & ~r.opens_course & ~r.closes_course)
    total = np.bincount(r.course, weights=np.where(counted, r.length, 0), minlength=k)
    return _per_row(total, measured, index)


def episodes_series(
    course: np.ndarray,
    day: np.ndarray,
    x: np.ndarray,
    threshold: float,
    start: np.ndarray,
    recovery: float,
    strict: bool,
    transfused: np.ndarray | None = None,
    free_days: float = 7,
) -> pl.Series:
    """On each day, how many episodes below the threshold have begun on the days
    from ``start`` up to it, read as low_days_series reads them (interpolated
    between anchors; an episode ends after ``recovery`` days above). Only
    anchors up to the day are used: a day between two anchors is known once
    the later one is measured. Null before the first anchor."""
    import numpy as np

    index, k = _course_index(course)
    inside = ~np.isnan(x) & (day >= start)
    if not inside.any():
        return pl.Series(np.full(len(day), np.nan), dtype=pl.Float64).fill_nan(None)
    r = _runs(index, day, x, inside, threshold, strict, recovery, transfused, free_days)
    # a run below begins an episode when it is the first below of its course
    # (the course's first run, or the run after an opening run above) or when
    # the run above before it was a recovery
    after_opening = np.r_[False, r.opens_course[:-1]] & ~r.opens_course
    previous_length = np.r_[0, r.length[:-1]]
    begins = r.below & (r.opens_course | after_opening | (previous_length >= recovery))
    shift = 1e7  # course index and day in one sortable key (days lie well within +/- 1e6)
    keys = np.sort(r.course[begins] * shift + (r.known[r.start[begins]] + 1e6))
    first_anchor = np.full(k, np.inf)
    np.minimum.at(first_anchor, r.grid_course, r.known)
    counts = np.searchsorted(keys, index * shift + (day + 1e6), side="right") - np.searchsorted(keys, index * shift, side="left")
    return pl.Series(np.where(day >= first_anchor[index], counts, np.nan), dtype=pl.Float64).fill_nan(None)


def _count_expr(series: Any, x: pl.Expr, bounds: list[pl.Expr], transfused: pl.Expr | None, *settings: Any) -> pl.Expr:
    """A kernel over each course's rows: course, day, x, its day bounds and the
    transfusions, with the settings after them (threshold, recovery, ...)."""
    names = [f"b{i}" for i in range(len(bounds))]

    def run(s: pl.Series) -> pl.Series:
        import numpy as np

        def field(name: str) -> np.ndarray:
            return s.struct.field(name).cast(pl.Float64).fill_null(np.nan).to_numpy()

        threshold, *rest = settings
        transfusions = s.struct.field("t").fill_null(False).to_numpy() if transfused is not None else None
        bound_values = [field(n) for n in names]
        return series(field("c"), field("d"), field("x"), threshold, *bound_values, *rest[:-1], transfusions, rest[-1])

    fields = [pl.col(COURSE).alias("c"), pl.col(DAY).alias("d"), x.alias("x"), *(b.alias(n) for b, n in zip(bounds, names))]
    if transfused is not None:
        fields.append(transfused.alias("t"))
    return pl.struct(fields).map_batches(run, return_dtype=pl.Float64)


def low_days_expr(
    x: pl.Expr,
    threshold: float,
    start: pl.Expr,
    end: pl.Expr,
    recovery: float,
    strict: bool,
    transfused: pl.Expr | None = None,
    free_days: float = 7,
) -> pl.Expr:
    return _count_expr(low_days_series, x, [start, end], transfused, threshold, recovery, strict, free_days)


def episodes_expr(
    x: pl.Expr,
    threshold: float,
    start: pl.Expr,
    recovery: float,
    strict: bool,
    transfused: pl.Expr | None = None,
    free_days: float = 7,
) -> pl.Expr:
    return _count_expr(episodes_series, x, [start], transfused, threshold, recovery, strict, free_days)
