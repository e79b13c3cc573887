"""Oxygen devices from Procedure and DeviceUseStatement intervals as o2_device state
events: at each boundary the most intensive device in force, 'none' between the
intervals of a complete source, and the device charted again inside long intervals
(import.md §2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from carscore.contract import Contract
from carscore.importer.events import Read, conform, empty
from carscore.importer.fhir.codes import FhirCodes
from carscore.importer.fhir.concepts import codings_of, first_match, foreign_codes, note_unread, referenced_codes
from carscore.importer.fhir.resources import record_problems, records_that_count, utc_us

HOUR_US = 3_600_000_000


def _intervals(
    frame: pl.DataFrame,
    concept: pl.Expr,
    table: dict[tuple[str, str], str],
    what: str,
    codes: FhirCodes,
    out: Read,
    period: str,
    instant: str,
) -> pl.DataFrame:
    """patient_id, device, start, end (stamps), source: one row per oxygen interval."""
    if not frame.height:
        return pl.DataFrame(
            schema={"patient_id": pl.String, "device": pl.String, "start": pl.String, "end": pl.String, "source": pl.String}
        )
    listed = list(table.items())
    lookup = pl.DataFrame(
        {"_system": [s for (s, _), _ in listed], "_code": [c for (_, c), _ in listed], "_device": [d for _, d in listed]},
        schema={"_system": pl.String, "_code": pl.String, "_device": pl.String},
    )
    frame = frame.with_columns(_concept=concept)
    codings = codings_of(frame, pl.col("_concept"), "_src")
    matched = first_match(codings, lookup, "_src", codes.column_systems)
    unmatched = frame.join(matched, on="_src", how="anti")
    foreign = foreign_codes(
        unmatched,
        codings,
        "_src",
        codes.column_systems,
        out,
        "a code of the carscore code system that is not an o2_device value: record skipped",
    )
    note_unread(out, what, codings, unmatched.join(foreign, on="_src", how="anti"), "_src")
    frame = frame.join(matched.select("_src", "_device"), on="_src", how="inner")
    start = pl.coalesce(pl.col(period).struct.field("start"), pl.col(instant)).str.strip_chars()
    untimed = frame.filter(start.is_null())
    record_problems(out, untimed.with_columns(_none=pl.lit("")), f"{what} without a time: record skipped", period, "_none")
    return frame.filter(start.is_not_null()).select(
        "patient_id",
        pl.col("_device").alias("device"),
        start.alias("start"),
        pl.col(period).struct.field("end").str.strip_chars().alias("end"),
        pl.col("_src").alias("source"),
    )


def _stamp_of(utc_us: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(microseconds=int(utc_us))).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Span:
    start: int  # UTC microseconds
    end: int | None  # None: still running when exported
    rank: int  # place in the contract's o2_device list: the more intensive, the higher
    device: str
    source: str


def _live(spans: list[_Span], t: int) -> list[_Span]:
    return [sp for sp in spans if sp.start <= t and (sp.end is None or t < sp.end)]


def _device_at(spans: list[_Span], t: int) -> _Span | None:
    """The most intensive device running at t (import.md §2: two devices, the more intensive)."""
    live = _live(spans, t)
    return max(live, key=lambda sp: (sp.rank, -sp.start)) if live else None


def _chartings(spans: list[_Span], complete: bool) -> tuple[list[tuple[int, str, str]], int]:
    """(instant, device, source) at each change of the device in force, and how many
    boundaries found two devices running together."""
    boundaries = sorted({sp.start for sp in spans} | {sp.end for sp in spans if sp.end is not None})
    current: str | None = None
    changes, together = [], 0
    for t in boundaries:
        span = _device_at(spans, t)
        if span is None:
            if not complete:
                current = None
                continue
            ended = [sp for sp in spans if sp.end == t]
            device, source = "none", max(ended, key=lambda sp: sp.rank).source if ended else ""
        else:
            device, source = span.device, span.source
            together += any(sp.device != device for sp in _live(spans, t))
        if device != current:
            changes.append((t, device, source))
            current = device
    return changes, together


def oxygen_states(
    intervals: pl.DataFrame,
    anchors: pl.DataFrame,
    ranks: dict[str, int],
    complete: bool,
    naive: str,
    out: Read,
    recharting_us: int,
) -> pl.DataFrame:
    """State events of the oxygen intervals [start, end): at each boundary the most intensive
    device running (a hand-over at one instant is no gap), 'none' when none runs and the
    source is complete, and the device charted again inside long intervals, every
    ``recharting_us`` (a charting holds at most the mapping's device_max_carry_hours; an
    interval longer than half of it is charted again, at a vital-sign instant when there is one).

    ``anchors`` (patient_id, _at, stamp) are the instants that carry held states (vital signs,
    state events, drip starts and stops). Outside every interval the rows' builder writes
    ``Read.outside`` (none) where no state is held."""
    if not intervals.height:
        return empty()
    intervals = intervals.with_columns(_from=utc_us(pl.col("start")), _to=utc_us(pl.col("end")))
    placed = pl.col("_from").is_not_null() & (pl.col("end").is_null() | pl.col("_to").is_not_null())
    events: list[dict[str, Any]] = []
    # a time that cannot be placed (no offset, a date alone) is passed on for the core to judge
    for row in intervals.filter(~placed).iter_rows(named=True):
        events.append({"patient_id": row["patient_id"], "stamp": row["start"], "text": row["device"], "source": row["source"]})
        if row["end"] and complete:
            events.append({"patient_id": row["patient_id"], "stamp": row["end"], "text": "none", "source": row["source"]})
    anchor_at: dict[str, tuple[np.ndarray, list[str]]] = {}
    for (pid,), group in anchors.sort("_at").group_by(["patient_id"], maintain_order=True):
        anchor_at[str(pid)] = (group["_at"].to_numpy(), group["stamp"].to_list())
    together = 0
    for (pid,), group in intervals.filter(placed).sort("_from").group_by(["patient_id"], maintain_order=True):
        rows = list(group.iter_rows(named=True))
        spans = [_Span(r["_from"], r["_to"], ranks.get(r["device"], 0), r["device"], r["source"]) for r in rows]
        stamps: dict[int, str] = {}
        for r in rows:
            stamps.setdefault(r["_from"], r["start"])
            if r["_to"] is not None:
                stamps.setdefault(r["_to"], r["end"])
        changes, overlapping = _chartings(spans, complete)
        together += overlapping
        times, texts = anchor_at.get(str(pid), (np.zeros(0, dtype=np.int64), []))
        for i, (t, device, source) in enumerate(changes):
            events.append({"patient_id": pid, "stamp": stamps[t], "text": device, "source": source})
            if device == "none":
                continue
            until = changes[i + 1][0] if i + 1 < len(changes) else None
            if until is None:
                running = _device_at(spans, t)
                until = running.end if running is not None else None
            previous = t
            while until is not None and until - previous > recharting_us:
                low = np.searchsorted(times, previous, side="right")
                high = np.searchsorted(times, min(previous + recharting_us, until - 1), side="right")
                if high > low:
                    previous, stamp = int(times[high - 1]), texts[high - 1]
                else:
                    previous += recharting_us
                    stamp = _stamp_of(previous)
                running = _device_at(spans, previous)
                cited = running.source if running is not None else source
                events.append({"patient_id": pid, "stamp": stamp, "text": device, "source": cited})
    if together:
        out.notes.append(f"warning: {together} times two oxygen devices were in force together: the more intensive was taken")
    frame = pl.DataFrame(events, schema={"patient_id": pl.String, "stamp": pl.String, "text": pl.String, "source": pl.String})
    return conform(frame.with_columns(column=pl.lit("o2_device"), kind=pl.lit("state"), naive=pl.lit(naive)))


def read_oxygen(
    records: pl.DataFrame,
    carrying: pl.DataFrame,
    codes: FhirCodes,
    contract: Contract,
    naive: str,
    out: Read,
    device_max_carry_hours: float,
) -> pl.DataFrame:
    """Procedure and DeviceUseStatement intervals as o2_device state events."""
    procedures = _intervals(
        records_that_count(records.filter(pl.col("resourceType") == "Procedure"), "Procedure", out),
        pl.col("code"),
        codes.procedures,
        "Procedures",
        codes,
        out,
        "performedPeriod",
        "performedDateTime",
    )
    statements = records_that_count(records.filter(pl.col("resourceType") == "DeviceUseStatement"), "DeviceUseStatement", out)
    device_types = referenced_codes(statements, pl.col("device").struct.field("reference"), "Device", "type", records)
    devices = _intervals(
        statements.join(device_types, on="_src", how="left"),
        pl.col("_concept"),
        codes.devices,
        "DeviceUseStatements",
        codes,
        out,
        "timingPeriod",
        "timingDateTime",
    )
    anchors = (
        carrying.select("patient_id", "stamp", _at=utc_us(pl.col("stamp")))
        .filter(pl.col("_at").is_not_null())
        .unique(["patient_id", "_at"], keep="first", maintain_order=True)
    )
    ranks = {d: i for i, d in enumerate(contract.columns["o2_device"].values)}
    intervals = pl.concat([procedures, devices])
    if codes.complete and intervals.height:
        # an interval source is complete: outside its intervals the patient breathes room air
        out.outside["o2_device"] = "none"
    recharting = int(device_max_carry_hours * HOUR_US / 2)
    return oxygen_states(intervals, anchors, ranks, codes.complete, naive, out, recharting)
