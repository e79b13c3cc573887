"""States that hold between records (import.md §2): the oxygen device from
its charting until the next (at most ``device_hours``), with the flow and
FiO2 charted under it; continuous drugs from start to stop, an agent running
while any of its orders runs; and the midnights such states run across."""

from __future__ import annotations

import numpy as np
import polars as pl

from carscore.importer.clock import Zone, years_of
from carscore.importer.events import VASOPRESSIN

INTERVAL = ["patient_id", "start_us", "end_us"]
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000


def drip_intervals(events: pl.DataFrame, out) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """patient_id, agent, start_us, end_us [start, end), sources: one row per
    stretch in which the agent ran under at least one order."""
    actions = events.filter(pl.col("kind").is_in(["start", "stop"]) & pl.col("agent").is_not_null())
    if not actions.height:
        return pl.DataFrame(
            schema={"patient_id": pl.String, "agent": pl.String, "start_us": pl.Int64, "end_us": pl.Int64, "sources": pl.String}
        )
    order = ["patient_id", "agent", pl.coalesce("order_id", pl.lit("")).alias("_order")]
    actions = actions.with_columns(order[2]).sort(["patient_id", "agent", "_order", "utc_us"])
    group = ["patient_id", "agent", "_order"]
    running = pl.col("kind") == "start"
    actions = actions.with_columns(_was=running.shift(1).over(group).fill_null(False), _is=running)
    opens = actions.filter(pl.col("_is") & ~pl.col("_was"))
    closes = actions.filter(~pl.col("_is") & pl.col("_was"))
    last = actions.group_by(group).agg(pl.all().last())
    unclosed = last.filter(pl.col("_is"))
    if unclosed.height:
        sample = ", ".join(unclosed["source"].head(5).to_list())
        out.notes.append(
            f"warning: {unclosed.height} drip order(s) without a stop: each runs to its last charted action ({sample})"
        )
    ends = pl.concat([closes.select(*group, "utc_us", "source"), unclosed.select(*group, "utc_us", "source")])
    opens = opens.select(*group, pl.col("utc_us").alias("start_us"), pl.col("source").alias("_from")).with_columns(
        _n=pl.int_range(pl.len()).over(group)
    )
    ends = (
        ends.sort([*group, "utc_us"])
        .select(*group, pl.col("utc_us").alias("end_us"), pl.col("source").alias("_to"))
        .with_columns(_n=pl.int_range(pl.len()).over(group))
    )
    spans = opens.join(ends, on=[*group, "_n"], how="left").with_columns(
        # an order charted once with no stop still counts at its own instant
        end_us=pl.max_horizontal(pl.col("end_us"), pl.col("start_us") + 1)
    )
    # one agent under several orders: merge overlapping stretches
    spans = spans.sort(["patient_id", "agent", "start_us"])
    reach = pl.col("end_us").cum_max().shift(1).over(["patient_id", "agent"])
    spans = spans.with_columns(_new=(reach.is_null() | (pl.col("start_us") > reach)).cast(pl.Int32))
    spans = spans.with_columns(_stretch=pl.col("_new").cum_sum().over(["patient_id", "agent"]))
    return (
        spans.group_by(["patient_id", "agent", "_stretch"], maintain_order=True)
        .agg(
            pl.col("start_us").min(),
            pl.col("end_us").max(),
            pl.concat_str([pl.col("_from"), pl.col("_to")], separator=",", ignore_nulls=True).str.join(",").alias("sources"),
        )
        .drop("_stretch")
    )


def device_intervals(events: pl.DataFrame, device_hours: float, severity: list[str], out) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """patient_id, o2_device, start_us, end_us: each device charting held until
    the next charting or ``device_hours``, whichever comes first. Two devices
    charted at one instant: the more intensive (``severity``, least to most),
    with a warning (import.md §2)."""
    chartings = events.filter((pl.col("kind") == "state") & (pl.col("column") == "o2_device"))
    if severity:
        rank = pl.col("text").replace_strict(severity, list(range(len(severity))), default=-1, return_dtype=pl.Int32)
        chartings = chartings.with_columns(_rank=rank)
        clashes = (
            chartings.filter(pl.col("text").is_not_null())
            .group_by(["patient_id", "utc_us"])
            .agg(pl.col("text").n_unique().alias("_n"), pl.col("source").first())
        )
        clashes = clashes.filter(pl.col("_n") > 1)
        if clashes.height:
            sample = ", ".join(clashes["source"].head(5).to_list())
            out.notes.append(
                f"warning: {clashes.height} instant(s) with two oxygen devices charted: the more intensive is used ({sample})"
            )
        chartings = chartings.sort(["patient_id", "utc_us", "_rank"], descending=[False, False, True]).unique(
            ["patient_id", "utc_us"], keep="first", maintain_order=True
        )
    chartings = chartings.sort(["patient_id", "utc_us"])
    following = pl.col("utc_us").shift(-1).over("patient_id")
    limit = pl.col("utc_us") + int(device_hours * HOUR_US)
    return chartings.select(
        "patient_id",
        pl.col("text").alias("o2_device"),
        pl.col("utc_us").alias("start_us"),
        pl.min_horizontal(following, limit).alias("end_us"),
        pl.col("source").alias("sources"),
    )


def midnights(intervals: pl.DataFrame, zone: Zone | None) -> pl.DataFrame:
    """patient_id, utc_us, local_us of each local midnight strictly inside an
    interval: the day a drip or a device runs into opens with a row at 00:00."""
    spans = intervals.filter(pl.col("end_us") > pl.col("start_us"))
    if not spans.height:
        return pl.DataFrame(schema={"patient_id": pl.String, "utc_us": pl.Int64, "local_us": pl.Int64})
    start, end = spans["start_us"].to_numpy(), spans["end_us"].to_numpy()
    if zone is not None:
        zone.cover(years_of(start) | years_of(end))
        start, end = zone.to_local(start), zone.to_local(end)
    first = (start // DAY_US + 1) * DAY_US
    count = np.maximum(0, -(-(end - first) // DAY_US))  # midnights m with start < m < end
    index = np.repeat(np.arange(len(first)), count)
    offset = np.arange(len(index)) - np.repeat(np.cumsum(count) - count, count)
    local = first[index] + offset * DAY_US
    patients = spans["patient_id"].to_numpy()[index] if len(index) else np.array([], dtype=object)
    utc = zone.to_utc(local)[0] if zone is not None and len(local) else local
    marks = pl.DataFrame({"patient_id": pl.Series(patients, dtype=pl.String), "utc_us": utc, "local_us": local})
    return marks.unique(["patient_id", "local_us"], maintain_order=True)


def _running_count(intervals: pl.DataFrame, at: pl.DataFrame, name: str) -> pl.DataFrame:
    """How many of the intervals contain each instant [start, end): a hand-over
    at one instant (a stop and a start) is one agent, not two."""
    if not intervals.height:
        return at.with_columns(pl.lit(0, dtype=pl.Int64).alias(name), pl.lit(None, dtype=pl.String).alias(f"_{name}_src"))
    steps = pl.concat(
        [
            intervals.select("patient_id", pl.col("start_us").alias("utc_us"), pl.lit(1).alias("_step"), "sources"),
            intervals.select("patient_id", pl.col("end_us").alias("utc_us"), pl.lit(-1).alias("_step"), "sources"),
        ]
    ).sort(["patient_id", "utc_us", "_step"])
    steps = (
        steps.with_columns(pl.col("_step").cum_sum().over("patient_id").alias(name))
        .group_by(["patient_id", "utc_us"], maintain_order=True)
        .agg(pl.col(name).last())
    )
    counted = at.sort("utc_us").join_asof(
        steps.sort("utc_us"), on="utc_us", by="patient_id", strategy="backward", check_sortedness=False
    )
    counted = counted.with_columns(pl.col(name).fill_null(0))
    # cite the intervals running at each instant
    cited = (
        at.select("patient_id", "utc_us")
        .join(intervals, on="patient_id", how="inner")
        .filter((pl.col("start_us") <= pl.col("utc_us")) & (pl.col("utc_us") < pl.col("end_us")))
    )
    cited = cited.group_by(["patient_id", "utc_us"]).agg(pl.col("sources").str.join(",").alias(f"_{name}_src"))
    return counted.join(cited, on=["patient_id", "utc_us"], how="left")


def held_values(
    at: pl.DataFrame, events: pl.DataFrame, drips: pl.DataFrame, devices: pl.DataFrame, medications_read: bool
) -> pl.DataFrame:
    """The state columns at each instant of ``at`` (patient_id, utc_us)."""
    at = at.unique(maintain_order=True).sort("utc_us")
    device = devices.select(
        "patient_id", pl.col("start_us").alias("utc_us"), "end_us", "o2_device", pl.col("sources").alias("_dev_src")
    )
    held = at.join_asof(device.sort("utc_us"), on="utc_us", by="patient_id", strategy="backward", check_sortedness=False)
    in_force = pl.col("end_us").is_not_null() & (pl.col("utc_us") < pl.col("end_us"))
    held = held.with_columns(
        o2_device=pl.when(in_force).then(pl.col("o2_device")),
        _dev_src=pl.when(in_force).then(pl.col("_dev_src")),
        _dev_at=pl.when(in_force).then(pl.col("end_us")),
    )
    # the device's charting time, to keep only flow and FiO2 charted under it
    held = held.join_asof(
        device.select("patient_id", pl.col("utc_us").alias("_dev_start"), pl.col("utc_us").alias("_key")).sort("_key"),
        left_on="utc_us",
        right_on="_key",
        by="patient_id",
        strategy="backward",
        check_sortedness=False,
    ).drop("_key")
    for column in ("o2_flow_lpm", "fio2_pct"):
        charted = events.filter((pl.col("kind") == "state") & (pl.col("column") == column)).select(
            "patient_id",
            pl.col("utc_us").alias("_t"),
            pl.col("number").alias(f"_{column}"),
            pl.col("source").alias(f"_{column}_src"),
        )
        held = held.join_asof(
            charted.sort("_t"), left_on="utc_us", right_on="_t", by="patient_id", strategy="backward", check_sortedness=False
        )
        under = pl.col("o2_device").is_not_null() & pl.col("_t").is_not_null() & (pl.col("_t") >= pl.col("_dev_start"))
        held = held.with_columns(
            pl.when(under).then(pl.col(f"_{column}").round(4).cast(pl.String).str.replace(r"\.0$", "")).alias(column),
            pl.when(under).then(pl.concat_str([pl.lit(f"{column}="), pl.col(f"_{column}_src")])).alias(f"_{column}_cite"),
        ).drop("_t", f"_{column}", f"_{column}_src")
    pressors = drips.filter(pl.col("agent") != VASOPRESSIN)
    vasopressin = drips.filter(pl.col("agent") == VASOPRESSIN)
    held = _running_count(pressors, held, "vasopressors")
    held = _running_count(vasopressin, held, "_vasopressin_n")
    held = held.with_columns(
        vasopressors=pl.when(pl.lit(medications_read)).then(pl.col("vasopressors").cast(pl.String)),
        vasopressin=pl.when(pl.lit(medications_read)).then(
            pl.when(pl.col("_vasopressin_n") > 0).then(pl.lit("yes")).otherwise(pl.lit("no"))
        ),
    )
    cites = [
        pl.concat_str([pl.lit("o2_device="), pl.col("_dev_src")]),
        pl.col("_o2_flow_lpm_cite"),
        pl.col("_fio2_pct_cite"),
        pl.concat_str([pl.lit("vasopressors="), pl.col("_vasopressors_src")]),
        pl.concat_str([pl.lit("vasopressin="), pl.col("__vasopressin_n_src")]),
    ]
    joined = pl.concat_str(cites, separator="; ", ignore_nulls=True)
    held = held.with_columns(_state_sources=pl.when(joined != "").then(joined))
    return held.select(
        "patient_id", "utc_us", "o2_device", "o2_flow_lpm", "fio2_pct", "vasopressors", "vasopressin", "_state_sources"
    )
