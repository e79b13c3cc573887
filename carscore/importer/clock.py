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

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl

from carscore.errors import UsageError

# ISO 8601 as exports write it: a date, optionally a clock time (T or a space),
# optionally seconds and a fraction, optionally Z or an offset
_ISO = (
    r"^\s*(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
_MINUTE_US = 60_000_000
_EPOCH = datetime(1970, 1, 1)


def parse_timestamps(text: pl.Expr) -> dict[str, pl.Expr]:
    """Expressions over a text column: ``naive`` (the written date and clock as
    a naive datetime), ``offset_min`` (the written offset in minutes, null when
    none was written), ``has_time`` and ``valid``."""
    part = [text.str.extract(_ISO, i) for i in range(1, 9)]
    has_time = part[3].is_not_null()
    canonical = pl.concat_str(
        [
            part[0],
            pl.lit("-"),
            part[1],
            pl.lit("-"),
            part[2],
            pl.lit(" "),
            part[3].fill_null("00"),
            pl.lit(":"),
            part[4].fill_null("00"),
            pl.lit(":"),
            part[5].fill_null("00"),
            pl.lit("."),
            part[6].fill_null("0").str.pad_end(6, "0").str.slice(0, 6),
        ]
    )
    # invalid dates (February 30, hour 24) come out null rather than raising
    naive = canonical.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us")
    zone = part[7]
    sign = pl.when(zone.str.starts_with("-")).then(-1).otherwise(1)
    digits = zone.str.replace_all(r"[^0-9]", "")
    offset = (
        pl.when(zone.str.to_uppercase().is_in(["Z", "UTC"]))
        .then(0)
        .when(zone.is_not_null())
        .then(
            sign
            * (
                digits.str.slice(0, 2).cast(pl.Int32, strict=False) * 60
                + digits.str.slice(2, 2).cast(pl.Int32, strict=False).fill_null(0)
            )
        )
    )
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


__all__ = ["Zone", "parse_timestamps", "years_of", "_MINUTE_US"]
