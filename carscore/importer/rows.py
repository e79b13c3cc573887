"""From events to contract rows: times on the care site's clock, the course
and day of each record, held states and running drips, one row per patient
per instant (import.md §1-§2, contract §4)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from carscore.contract import Contract
from carscore.errors import InputProblem, UsageError
from carscore.importer import states
from carscore.importer.clock import Zone, read_timestamps, years_of
from carscore.importer.events import VITAL_COLUMNS
from carscore.importer.infusions import Infusions
from carscore.importer.units import convert

DAY_US = 86_400_000_000


@dataclass
class Built:
    rows: pl.DataFrame  # contract cells as text, with patient_id, infusion, day, time and source
    problems: list[InputProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def where(source: str) -> tuple[str, int, str]:
    """File, line and resource id of a source reference 'file:line' or 'file:line#id'."""
    ref, _, resource = source.partition("#")
    file, _, line = ref.rpartition(":")
    if not file or not line.isdigit():
        return source, 0, resource
    return file, int(line), resource


def problem(source: str, message: str, column: str = "", value: object = "") -> InputProblem:
    file, line, resource = where(source or "")
    text = f"{message} (resource {resource})" if resource else message
    return InputProblem(file, text, line, column, "" if value is None else str(value))


def _timed(events: pl.DataFrame, zone: Zone | None, out: Built) -> pl.DataFrame:
    """utc_us, local_us and has_time for every event whose time can be read."""
    events = (
        read_timestamps(events, "stamp", "_t_")
        .with_columns(
            _naive=pl.col("_t_naive").dt.epoch("us"),
            _offset=pl.col("_t_offset_min"),
            has_time=pl.col("_t_has_time"),
            _ok=pl.col("_t_valid"),
        )
        .drop("_t_naive", "_t_offset_min", "_t_has_time", "_t_valid")
    )
    for src, value in events.filter(~pl.col("_ok")).select("source", "stamp").iter_rows():
        out.problems.append(problem(src, "cannot read this time (ISO 8601 expected, e.g. 2024-03-09T23:30)", "time", value))
    no_offset = pl.col("_ok") & pl.col("_offset").is_null() & pl.col("has_time") & (pl.col("naive") == "error")
    for src, value in events.filter(no_offset).select("source", "stamp").iter_rows():
        out.problems.append(problem(src, "a time without an offset: this source must give one (e.g. -05:00 or Z)", "time", value))
    events = events.filter(pl.col("_ok") & ~no_offset)
    aware = (pl.col("_offset").is_not_null() | ((pl.col("naive") == "utc") & pl.col("has_time"))).alias("_aware")
    events = events.with_columns(aware)
    aware_mask = events["_aware"].to_numpy()
    if aware_mask.any() and zone is None:
        raise UsageError(
            "some timestamps carry an offset or are in UTC: give the care site's time zone with --timezone (e.g. America/Chicago)"
        )
    naive = events["_naive"].to_numpy()
    offset = events["_offset"].fill_null(0).to_numpy().astype(np.int64) * 60_000_000
    utc = np.where(aware_mask, naive - offset, 0)
    local = naive.copy()
    status = np.zeros(len(naive), dtype=np.int64)
    if zone is not None and len(naive):
        zone.cover(years_of(naive) | years_of(utc[aware_mask]))
        local = np.where(aware_mask, zone.to_local(utc), naive)
        from_local, status = zone.to_utc(naive)
        utc = np.where(aware_mask, utc, from_local)
        status = np.where(aware_mask | ~events["has_time"].to_numpy(), 0, status)
    else:
        utc = np.where(aware_mask, utc, naive)
    events = events.with_columns(pl.Series("utc_us", utc), pl.Series("local_us", local), pl.Series("_dst", status))
    for kind, words in ((1, "falls in the spring-forward gap of"), (2, "occurs twice in the autumn overlap of")):
        shifted = events.filter(pl.col("_dst") == kind)
        if shifted.height:
            sample = ", ".join(shifted["source"].head(5).to_list())
            more = f" and {shifted.height - 5} more" if shifted.height > 5 else ""
            reading = "read as the clock moved forward" if kind == 1 else "read as the first occurrence"
            out.notes.append(
                f"warning: {shifted.height} local time(s) {words} {zone.name}: kept as written, {reading} "  # type: ignore[union-attr]
                f"({sample}{more})"
            )
    return events.drop("_naive", "_offset", "_ok", "_aware", "_dst")


def _courses(events: pl.DataFrame, infusions: Infusions, out: Built) -> pl.DataFrame:
    """The infusion each record belongs to: the latest on or before its local
    date; records before the first infusion belong to it (negative days)."""
    table = infusions.table.sort("local_date")
    events = events.with_columns(local_date=pl.from_epoch("local_us", time_unit="us").dt.date())
    known = set(table["patient_id"].to_list())
    unknown = events.filter(~pl.col("patient_id").is_in(list(known)))
    if unknown.height:
        per_patient = unknown.group_by("patient_id", maintain_order=True).len()
        listed = ", ".join(f"{p} ({n})" for p, n in per_patient.head(10).iter_rows())
        out.notes.append(f"{unknown.height} records of patients not in the infusions file were skipped: {listed}")
    events = events.filter(pl.col("patient_id").is_in(list(known))).sort("local_date")
    right = table.select("patient_id", "infusion", pl.col("local_date").alias("_infused"), "age_years")
    after = events.join_asof(
        right, left_on="local_date", right_on="_infused", by="patient_id", strategy="backward", check_sortedness=False
    )
    first = (
        table.sort("infusion")
        .unique("patient_id", keep="first")
        .select(
            "patient_id",
            pl.col("infusion").alias("_first"),
            pl.col("local_date").alias("_first_date"),
            pl.col("age_years").alias("_first_age"),
        )
    )
    after = after.join(first, on="patient_id", how="left").with_columns(
        infusion=pl.coalesce("infusion", "_first"),
        _infused=pl.coalesce("_infused", "_first_date"),
        age_years=pl.coalesce("age_years", "_first_age"),
    )
    after = after.with_columns(day=(pl.col("local_date") - pl.col("_infused")).dt.total_days())
    seen = set(after.select(pl.concat_str("patient_id", pl.lit("|"), pl.col("infusion").cast(pl.String))).to_series().to_list())
    for pid, inf in table.select("patient_id", "infusion").iter_rows():
        if f"{pid}|{inf}" not in seen:
            out.problems.append(
                InputProblem("infusions", f"patient {pid} infusion {inf} has no records in the sources", 0, "patient_id", pid)
            )
    return after.drop("_first", "_first_date", "_first_age", "_infused")


def _plausible(events: pl.DataFrame, contract: Contract, out: Built) -> pl.DataFrame:
    """Values outside the contract's plausible range after conversion are errors
    (a Fahrenheit value in a Celsius field is not converted: import.md §4)."""
    ranged = [(n, c) for n, c in contract.columns.items() if c.numeric and c.low is not None]
    outside = pl.any_horizontal(
        [(pl.col("column") == n) & ((pl.col("number") < c.low) | (pl.col("number") > c.high)) for n, c in ranged]
    ).fill_null(False)
    bad = events.filter(outside)
    for src, column, value in bad.select("source", "column", "number").head(200).iter_rows():
        col = contract.columns[column]
        out.problems.append(
            problem(
                src,
                f"is outside the plausible range of {column} ({col.low:g} to {col.high:g} {col.unit}) after conversion; "
                "record skipped",
                column,
                f"{value:g}",
            )
        )
    return events.filter(~outside)


def _cell(number: pl.Expr, text: pl.Expr) -> pl.Expr:
    shown = number.round(4).cast(pl.String).str.replace(r"\.0$", "")
    return pl.coalesce(shown, text)


def build_rows(
    events: pl.DataFrame,
    infusions: Infusions,
    zone: Zone | None,
    *,
    device_hours: float = 24.0,
    medications_read: bool = False,
    contract: Contract | None = None,
    outside: dict[str, str] | None = None,
) -> Built:
    out = Built(pl.DataFrame())
    events, unknown = convert(events)
    for src, column, unit, value in unknown.select("source", "column", "unit", "number").iter_rows():
        out.problems.append(problem(src, f"unknown unit '{unit}' for {column}: not converted, record skipped", "unit", value))
    if contract is not None:
        events = _plausible(events, contract, out)
    events = _timed(events, zone, out)
    events = _courses(events, infusions, out)
    key = ["patient_id", "utc_us"]

    # every instant a row may stand at: the records', and midnights inside held states
    drips = states.drip_intervals(events, out)
    severity = list(contract.columns["o2_device"].values) if contract is not None else []
    devices = states.device_intervals(events, device_hours, severity, out)
    oxygen = devices.filter(pl.col("o2_device").is_not_null() & (pl.col("o2_device") != "none"))
    midnights = states.midnights(pl.concat([drips.select(states.INTERVAL), oxygen.select(states.INTERVAL)]), zone)
    # an unreadable charting ends the state before it but makes no row of its own
    unreadable = (pl.col("kind") == "state") & pl.col("text").is_null() & pl.col("number").is_null()
    instants = pl.concat(
        [
            events.filter(~unreadable).select(
                *key,
                "local_us",
                "has_time",
                "infusion",
                "day",
                "age_years",
                (pl.col("column").is_in(VITAL_COLUMNS) | pl.col("kind").is_in(["state", "start", "stop"])).alias("_carries"),
            ),
            _midnight_instants(midnights, events),
        ],
        how="vertical_relaxed",
    )
    instants = instants.group_by(key, maintain_order=True).agg(
        pl.col("local_us").first(),
        pl.col("has_time").any(),
        pl.col("infusion").first(),
        pl.col("day").first(),
        pl.col("age_years").first(),
        pl.col("_carries").any(),
    )

    # held states at the instants that carry them (vital signs, state events, midnights)
    carrying = instants.filter(pl.col("_carries")).select(key).sort("utc_us")
    held = states.held_values(carrying, events, drips, devices, medications_read)
    for column, value in (outside or {}).items():
        # a complete interval source (SDTM PR) says what holds where no interval runs
        held = held.with_columns(pl.col(column).fill_null(pl.lit(value)))

    # values observed at each instant; two values of one column at one instant are two rows
    values = events.filter(pl.col("kind").is_in(["measure", "given"])).with_columns(
        _cell=_cell(pl.col("number"), pl.col("text")),
    )
    values = values.with_columns(_k=pl.int_range(pl.len()).over([*key, "column"]))
    cells = values.select(
        *key, "_k", "column", "_cell", pl.concat_str([pl.col("column"), pl.lit("="), pl.col("source")]).alias("_src")
    )
    wide = (
        cells.pivot(on="column", index=[*key, "_k"], values="_cell", aggregate_function="first")
        if cells.height
        else cells.select(*key, "_k")
    )
    sources = cells.group_by([*key, "_k"]).agg(pl.col("_src").str.join("; ").alias("_value_sources"))
    wide = wide.join(sources, on=[*key, "_k"], how="left")
    state_only = held.select(key).join(wide.select(key).unique(), on=key, how="anti").with_columns(_k=pl.lit(0, dtype=pl.Int64))
    rows = pl.concat([wide.with_columns(pl.col("_k").cast(pl.Int64)), state_only], how="diagonal_relaxed")
    rows = rows.join(instants.drop("_carries"), on=key, how="left").join(held, on=key, how="left", suffix="_held")
    # a state column written on the record itself (a REDCap form) wins over the state held
    both = [c[: -len("_held")] for c in rows.columns if c.endswith("_held")]
    rows = rows.with_columns([pl.coalesce(c, f"{c}_held").alias(c) for c in both]).drop([f"{c}_held" for c in both])
    rows = rows.with_columns(
        source=pl.concat_str([pl.col("_value_sources"), pl.col("_state_sources")], separator="; ", ignore_nulls=True),
        time=pl.when(pl.col("has_time")).then(pl.from_epoch("local_us", time_unit="us").dt.strftime("%H:%M")),
    ).sort(["patient_id", "infusion", "day", "local_us", "_k"])
    # age written once per course, on its first row (contract §1)
    first_row = pl.int_range(pl.len()).over(["patient_id", "infusion"]) == 0
    rows = rows.with_columns(age_years=pl.when(first_row).then(pl.col("age_years")))
    rows = rows.drop([c for c in rows.columns if c.startswith("_") or c in ("utc_us", "local_us", "has_time")])
    # the contract's order: identity and time first, then the columns as the contract lists them
    leading = ["patient_id", "infusion", "day", "time", "age_years"]
    order = {name: i for i, name in enumerate(contract.columns)} if contract is not None else {}
    values = sorted((c for c in rows.columns if c not in leading and c != "source"), key=lambda c: (order.get(c, len(order)), c))
    out.rows = rows.select([*leading, *values, "source"])
    return out


def _midnight_instants(midnights: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Midnight rows take the course of the patient's records around them."""
    if not midnights.height:
        return pl.DataFrame(
            schema={
                "patient_id": pl.String,
                "utc_us": pl.Int64,
                "local_us": pl.Int64,
                "has_time": pl.Boolean,
                "infusion": pl.Int64,
                "day": pl.Int64,
                "age_years": pl.Float64,
                "_carries": pl.Boolean,
            }
        )
    courses = (
        events.select("patient_id", "local_date", "infusion", "day", "age_years")
        .unique(["patient_id", "local_date"])
        .with_columns(_start=pl.col("local_date") - pl.duration(days=pl.col("day")))
    )
    marks = midnights.with_columns(local_date=pl.from_epoch("local_us", time_unit="us").dt.date()).sort("local_date")
    spans = courses.select("patient_id", "infusion", "_start", "age_years").unique(["patient_id", "infusion"]).sort("_start")
    marks = marks.join_asof(
        spans, left_on="local_date", right_on="_start", by="patient_id", strategy="backward", check_sortedness=False
    )
    return marks.with_columns(
        day=(pl.col("local_date") - pl.col("_start")).dt.total_days(), has_time=pl.lit(True), _carries=pl.lit(True)
    ).select("patient_id", "utc_us", "local_us", "has_time", "infusion", "day", "age_years", "_carries")
