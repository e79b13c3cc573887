"""Interval records (a start and an end on each record: SDTM CM and PR) into events:
a drip starts and stops, an administration is given on each date it spans, and a
state holds from its start, is charted again at each midnight inside, and at its end
gives way to the interval still running or to the table's `outside` values."""

from __future__ import annotations

import polars as pl

from carscore.importer.clock import parse_timestamps
from carscore.importer.events import Read
from carscore.importer.mapping_tables import Table
from carscore.importer.rows import problem

# the longest run of days an administration interval is spread over (a corticosteroid course
# is days to weeks; a year is a typing error in the end date)
MAX_GIVEN_DAYS = 366


def _instant(stamp: pl.Expr) -> pl.Expr:
    """A comparable instant of a stamp (the written clock, less its offset if any)."""
    parsed = parse_timestamps(stamp)
    return parsed["naive"].dt.epoch("us") - parsed["offset_min"].fill_null(0).cast(pl.Int64) * 60_000_000


def interval_events(events: pl.DataFrame, table: Table, name: str, out: Read) -> pl.DataFrame:
    """Records that run from a start to an end (SDTM CM and PR, FHIR periods)."""
    events = events.with_columns(_t0=_instant(pl.col("stamp")), _t1=_instant(pl.col("_end_stamp")))
    backwards = events.filter(pl.col("_t1") < pl.col("_t0")).unique("_rec", keep="first")
    for src, end in backwards.select("_rec", "_end_stamp").head(50).iter_rows():
        out.problems.append(problem(src, f"ends ({end}) before it starts: read from its start only", table.interval[1], end))
    events = events.with_columns(
        _end_stamp=pl.when(pl.col("_t1") >= pl.col("_t0")).then(pl.col("_end_stamp")),
        _t1=pl.when(pl.col("_t1") >= pl.col("_t0")).then(pl.col("_t1")),
    )
    if table.kind == "drip":
        stops = events.filter(pl.col("_end_stamp").is_not_null() & (pl.col("kind") == "start"))
        return pl.concat([events, stops.with_columns(stamp=pl.col("_end_stamp"), kind=pl.lit("stop"))], how="vertical_relaxed")
    if table.kind == "given":
        return _given_daily(events, name, out)
    return _held_states(events, table)


def _given_daily(events: pl.DataFrame, name: str, out: Read) -> pl.DataFrame:
    """An administration from one date to another is given on each of those dates."""
    start = pl.col("stamp").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    end = pl.col("_end_stamp").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    events = events.with_columns(_d0=start, _d1=pl.coalesce(end, start)).with_columns(_d1=pl.max_horizontal("_d0", "_d1"))
    long = events.filter((pl.col("_d1") - pl.col("_d0")).dt.total_days() > MAX_GIVEN_DAYS)
    if long.height:
        out.notes.append(
            f"{name}: {long.height} administrations over more than {MAX_GIVEN_DAYS} days were read on their first date only "
            f"(first: {long['source'][0]})"
        )
    events = events.with_columns(
        _d1=pl.when((pl.col("_d1") - pl.col("_d0")).dt.total_days() > MAX_GIVEN_DAYS)
        .then(pl.col("_d0"))
        .otherwise(pl.col("_d1")),
        _row=pl.int_range(pl.len()),
    )
    dated = events.filter(pl.col("_d0").is_not_null())
    spread = dated.with_columns(_date=pl.date_ranges("_d0", "_d1", "1d")).explode("_date")
    spread = spread.with_columns(_n=pl.int_range(pl.len()).over("_row"))
    spread = spread.with_columns(
        stamp=pl.when(pl.col("_n") == 0).then(pl.col("stamp")).otherwise(pl.col("_date").dt.strftime("%Y-%m-%d"))
    )
    # an unreadable start is named by the core, which reads every stamp
    return pl.concat([spread.drop("_date", "_n"), events.filter(pl.col("_d0").is_null())], how="vertical_relaxed")


def _held_states(events: pl.DataFrame, table: Table) -> pl.DataFrame:
    """A state interval's values from its start; at each local midnight inside it
    (the core holds a charting a day at most, and opens each day with a 00:00 row);
    at its end, the values of the latest interval of the patient still running
    then, else the table's `outside` values (an oxygen source is complete: none
    outside)."""
    records = events.select("patient_id", "_rec", "_t0", "_t1", "stamp", "_end_stamp", "naive", "source").unique("_rec")
    ends = records.filter(pl.col("_t1").is_not_null()).select(
        "patient_id",
        pl.col("_rec").alias("_ending"),
        pl.col("_t1").alias("_at"),
        pl.col("_end_stamp").alias("_point"),
        "naive",
        "source",
    )
    # midnights on the written clock inside intervals whose times carry no offset
    start_day = pl.col("stamp").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    end_day = pl.col("_end_stamp").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    plain = parse_timestamps(pl.col("stamp"))["offset_min"].is_null()
    spans = records.filter(pl.col("_t1").is_not_null() & plain).with_columns(_d0=start_day + pl.duration(days=1), _d1=end_day)
    spans = spans.filter(
        pl.col("_d0").is_not_null()
        & pl.col("_d1").is_not_null()
        & ((pl.col("_d1") - pl.col("_d0")).dt.total_days() <= MAX_GIVEN_DAYS)
    ).filter(pl.col("_d0") <= pl.col("_d1"))
    midnights = (
        spans.with_columns(_day=pl.date_ranges("_d0", "_d1", "1d"))
        .explode("_day")
        .with_columns(
            _at=pl.col("_day").cast(pl.Datetime("us")).dt.epoch("us"), _point=pl.col("_day").dt.strftime("%Y-%m-%dT00:00")
        )
        .filter((pl.col("_t0") < pl.col("_at")) & (pl.col("_at") < pl.col("_t1")))
        .select("patient_id", pl.lit(None, dtype=pl.String).alias("_ending"), "_at", "_point", "naive", "source")
        .unique(["patient_id", "_at"])
    )
    points = pl.concat([ends, midnights.join(ends.select("patient_id", "_at"), on=["patient_id", "_at"], how="anti")])
    points = points.with_row_index("_point_id")
    running = (
        points.join(records.select("patient_id", "_rec", "_t0", "_t1"), on="patient_id")
        .filter(
            (pl.col("_rec") != pl.col("_ending")).fill_null(True)
            & (pl.col("_t0") <= pl.col("_at"))
            & (pl.col("_t1").is_null() | (pl.col("_at") < pl.col("_t1")))
        )
        .group_by("_point_id")
        .agg(pl.col("_rec").sort_by(["_t0", "_rec"]).last().alias("_running"), pl.col("_t0").max().alias("_since"))
    )
    points = points.join(running, on="_point_id", how="left")
    # the interval running then is charted again; one starting at that instant (a hand-over) says so itself
    resumed = points.filter(pl.col("_running").is_not_null() & (pl.col("_since") < pl.col("_at")))
    again = events.join(resumed.select(pl.col("_running").alias("_rec"), "_point"), on="_rec").with_columns(
        stamp=pl.col("_point")
    )
    parts = [events, again.drop("_point")]
    free = points.filter(pl.col("_running").is_null() & pl.col("_ending").is_not_null())
    for column, value in table.outside.items():
        parts.append(
            free.select(
                "patient_id",
                pl.col("_point").alias("stamp"),
                "naive",
                "source",
                pl.lit(column).alias("column"),
                pl.lit(value).alias("text"),
                pl.lit("state").alias("kind"),
            )
        )
    return pl.concat(parts, how="diagonal_relaxed")
