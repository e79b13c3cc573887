"""Timestamps of long exports: parsed, and moved between UTC and the care
site's wall clock with the tz database as Python's zoneinfo applies it
(import.md §1), vectorised over millions of records.

A zone's offsets change a few times a year at most. For the years the data
span, zoneinfo is asked for the offset at every day's start, and each change
is narrowed down to the minute; conversions then look each instant up in
that table with numpy. Every year is covered by the zone's rules, DST
included, whatever the year (de-identified data often sit in 2100-2200).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl

from carscore.errors import UsageError

_MINUTE_US = 60_000_000
_EPOCH = datetime(1970, 1, 1)


_CANONICAL = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?$")


_OFFSET_TAIL = r"(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)$"
_CLOCK_THEN_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?\s*" + _OFFSET_TAIL


def _offset_minutes(zone: pl.Expr) -> pl.Expr:
    """A written offset (Z, UTC, +05:30, -0600, +02) in minutes east of UTC."""
    sign = pl.when(zone.str.starts_with("-")).then(-1).otherwise(1)
    digits = zone.str.replace_all(r"[^0-9]", "")
    hours = digits.str.slice(0, 2).cast(pl.Int32, strict=False)
    minutes = digits.str.slice(2, 2).cast(pl.Int32, strict=False).fill_null(0)
    return (
        pl.when(zone.str.to_uppercase().is_in(["Z", "UTC"])).then(0).when(zone.is_not_null()).then(sign * (hours * 60 + minutes))
    )


def read_timestamps(frame: pl.DataFrame, column: str, prefix: str = "_") -> pl.DataFrame:
    """Add to ``frame`` the reading of the text column ``column``: ``<prefix>naive``
    (the written date and clock, a naive datetime), ``<prefix>offset_min`` (the
    written offset in minutes, null when none), ``<prefix>has_time`` and
    ``<prefix>valid``. Computed in steps, each once over the column."""
    text = pl.col(column).str.strip_chars()
    zone, body = f"{prefix}zone", f"{prefix}body"
    # the offset, when written, is the tail after a clock time (a date's hyphens are not one)
    frame = frame.with_columns(pl.when(text.str.contains(_CLOCK_THEN_OFFSET)).then(text.str.extract(_OFFSET_TAIL, 1)).alias(zone))
    cut = pl.when(pl.col(zone).is_not_null()).then(text.str.slice(0, text.str.len_chars() - pl.col(zone).str.len_chars()))
    frame = frame.with_columns(
        cut.otherwise(text).str.strip_chars().str.replace(" ", "T", literal=True).str.replace(",", ".", literal=True).alias(body)
    )
    b = pl.col(body)
    has_time = b.str.len_chars() > 10
    frame = frame.with_columns(
        pl.coalesce(
            b.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us"),
            pl.when(has_time).then(b.str.to_datetime("%Y-%m-%dT%H:%M", strict=False, time_unit="us")),
            pl.when(~has_time).then(b.str.to_datetime("%Y-%m-%d", strict=False, time_unit="us")),
        ).alias(f"{prefix}naive"),
        has_time.alias(f"{prefix}has_time"),
    )
    z = pl.col(zone)
    offset = _offset_minutes(z)
    frame = frame.with_columns(offset.alias(f"{prefix}offset_min"))
    naive, off = pl.col(f"{prefix}naive"), pl.col(f"{prefix}offset_min")
    return frame.with_columns(
        (naive.is_not_null() & (z.is_null() | off.is_not_null())).fill_null(False).alias(f"{prefix}valid"),
    ).drop(zone, body)


def parse_timestamps(text: pl.Expr) -> dict[str, pl.Expr]:
    """The same reading as expressions, for small tables (infusions, birth dates):
    ``naive``, ``offset_min``, ``has_time`` and ``valid``."""
    stripped = text.str.strip_chars()
    zone = pl.when(stripped.str.contains(_CLOCK_THEN_OFFSET)).then(stripped.str.extract(_OFFSET_TAIL, 1))
    body = pl.when(zone.is_not_null()).then(stripped.str.slice(0, stripped.str.len_chars() - zone.str.len_chars()))
    body = body.otherwise(stripped).str.strip_chars().str.replace(" ", "T", literal=True).str.replace(",", ".", literal=True)
    has_time = body.str.len_chars() > 10
    naive = pl.coalesce(
        body.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us"),
        pl.when(has_time).then(body.str.to_datetime("%Y-%m-%dT%H:%M", strict=False, time_unit="us")),
        pl.when(~has_time).then(body.str.to_datetime("%Y-%m-%d", strict=False, time_unit="us")),
    )
    offset = _offset_minutes(zone)
    valid = naive.is_not_null() & (zone.is_null() | offset.is_not_null())
    return {"naive": naive, "offset_min": offset, "has_time": has_time, "valid": valid.fill_null(False)}


class Zone:
    """One IANA zone, with its offsets for the years asked for."""

    def __init__(self, name: str):
        try:
            self.info = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"unknown time zone '{name}': give an IANA name such as America/Chicago or Europe/Paris") from None
        self.name = name
        self._years: set[int] = set()
        self._starts = np.zeros(0, dtype=np.int64)  # UTC microseconds where an offset begins
        self._offsets = np.zeros(0, dtype=np.int64)  # that offset, microseconds east of UTC

    def _offset_us(self, utc: datetime) -> int:
        local = utc.replace(tzinfo=timezone.utc).astimezone(self.info)
        return int(local.utcoffset().total_seconds() * 1_000_000)  # type: ignore[union-attr]

    def cover(self, years: set[int]) -> None:
        """Learn the offsets of these years (and the days around them)."""
        missing = sorted(y for y in years if y not in self._years and 1 <= y <= 9998)
        if not missing:
            return
        points: dict[int, int] = dict(zip(self._starts.tolist(), self._offsets.tolist()))
        for year in missing:
            day = datetime(year, 1, 1) - timedelta(days=2)
            end = datetime(year + 1, 1, 1) + timedelta(days=2)
            previous = self._offset_us(day)
            points.setdefault(_us(day), previous)
            while day < end:
                following = day + timedelta(days=1)
                now = self._offset_us(following)
                if now != previous:
                    # narrow the change down to the minute
                    low, high = day, following
                    while high - low > timedelta(minutes=1):
                        mid = low + (high - low) / 2
                        mid = mid.replace(second=0, microsecond=0)
                        if mid <= low:
                            break
                        if self._offset_us(mid) == previous:
                            low = mid
                        else:
                            high = mid
                    points[_us(high)] = now
                previous = now
                day = following
            self._years.add(year)
        starts = np.array(sorted(points), dtype=np.int64)
        offsets = np.array([points[s] for s in starts.tolist()], dtype=np.int64)
        # drop repeats of one offset
        keep = np.r_[True, offsets[1:] != offsets[:-1]]
        self._starts, self._offsets = starts[keep], offsets[keep]

    def offset_at(self, utc_us: np.ndarray) -> np.ndarray:
        index = np.searchsorted(self._starts, utc_us, side="right") - 1
        return self._offsets[np.clip(index, 0, None)]

    def to_local(self, utc_us: np.ndarray) -> np.ndarray:
        """UTC instants (microseconds) to the wall clock (microseconds, naive)."""
        return utc_us + self.offset_at(utc_us)

    def to_utc(self, local_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Wall-clock times to UTC, and for each: 0 normal, 1 in a spring-forward
        gap (read with the offset before the change, i.e. moved forward),
        2 in an autumn overlap (the first occurrence)."""
        candidates = np.unique(self._offsets)
        found = np.zeros(len(local_us), dtype=np.int64)
        count = np.zeros(len(local_us), dtype=np.int64)
        earliest = np.full(len(local_us), np.iinfo(np.int64).max, dtype=np.int64)
        for offset in candidates:
            utc = local_us - offset
            fits = self.offset_at(utc) == offset
            count += fits
            earliest = np.where(fits, np.minimum(earliest, utc), earliest)
        found = np.where(count > 0, earliest, 0)
        # in a gap no offset fits: use the offset in force just before the change
        gap = count == 0
        if gap.any():
            before = self.offset_at(local_us[gap] - self._offsets.max() - 3_600_000_000)
            found[gap] = local_us[gap] - before
        status = np.where(gap, 1, np.where(count > 1, 2, 0))
        return found, status


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def years_of(us: np.ndarray) -> set[int]:
    if not len(us):
        return set()
    days = us // 86_400_000_000
    low, high = int(days.min()), int(days.max())
    first = (_EPOCH + timedelta(days=low)).year
    last = (_EPOCH + timedelta(days=high)).year
    # the years in between may hold records too, and offsets do change year to year
    present = np.unique(((us // 86_400_000_000) / 365.2425 + 1970).astype(np.int64))
    return {int(y) for y in present} | {first, last}


__all__ = ["Zone", "parse_timestamps", "read_timestamps", "years_of", "_MINUTE_US"]
