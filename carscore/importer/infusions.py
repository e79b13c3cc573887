"""The infusions file (contract §4): patient_id, infusion (1, 2, ...),
infusion_datetime (ISO 8601; without an offset, local time in --timezone; a
date alone is allowed), optional age_years or birth_date."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from carscore.errors import InputProblem, UsageError
from carscore.importer.clock import Zone, parse_timestamps, years_of

REQUIRED = ("patient_id", "infusion", "infusion_datetime")


@dataclass
class Infusions:
    # patient_id, infusion, local_us (wall clock of the infusion, microseconds),
    # local_date (date), age_years (float or null)
    table: pl.DataFrame
    problems: list[InputProblem]


def read_infusions(path: str, zone: Zone | None) -> Infusions:
    name = str(path)
    try:
        frame = pl.read_csv(Path(path).read_bytes(), infer_schema=False)
    except OSError as exc:
        raise UsageError(f"cannot read the infusions file {name}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - polars raises several kinds for malformed CSV
        raise UsageError(f"{name}: cannot be read as CSV ({str(exc).splitlines()[0]})") from None
    frame.columns = [c.strip().lower().replace(" ", "_") for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UsageError(f"{name}: the infusions file needs the columns {', '.join(REQUIRED)} (missing: {', '.join(missing)})")
    problems: list[InputProblem] = []
    stamp = parse_timestamps(pl.col("infusion_datetime"))
    frame = frame.with_row_index("_line", offset=2).with_columns(
        _naive=stamp["naive"],
        _offset=stamp["offset_min"],
        _ok=stamp["valid"],
        _infusion=pl.col("infusion").str.strip_chars().cast(pl.Int64, strict=False),
    )
    bad = frame.filter(~pl.col("_ok") | pl.col("_infusion").is_null() | (pl.col("_infusion") < 1))
    for row in bad.iter_rows(named=True):
        column, value = ("infusion_datetime", row["infusion_datetime"]) if not row["_ok"] else ("infusion", row["infusion"])
        problems.append(
            InputProblem(
                name, "cannot be read: dates and times are ISO 8601, infusions 1, 2, ...", row["_line"], column, value or ""
            )
        )
    good = frame.filter(pl.col("_ok") & pl.col("_infusion").is_not_null() & (pl.col("_infusion") >= 1))
    naive_us = good["_naive"].dt.epoch("us").to_numpy()
    offsets = good["_offset"].to_numpy(allow_copy=True)
    aware = ~good["_offset"].is_null().to_numpy()
    if aware.any() and zone is None:
        raise UsageError(f"{name}: infusion times carry an offset or are UTC: give the care site's --timezone")
    local = naive_us.copy()
    if aware.any():
        utc = naive_us[aware] - offsets[aware].astype("int64") * 60_000_000
        zone.cover(years_of(utc))  # type: ignore[union-attr]
        local[aware] = zone.to_local(utc)  # type: ignore[union-attr]
    good = good.with_columns(pl.Series("local_us", local, dtype=pl.Int64))
    table = good.select(
        pl.col("patient_id").str.strip_chars(),
        pl.col("_infusion").alias("infusion"),
        pl.col("local_us"),
        _age(good).alias("age_years"),
    ).with_columns(local_date=pl.from_epoch("local_us", time_unit="us").dt.date())
    dupes = table.filter(pl.struct("patient_id", "infusion").is_duplicated())
    for pid, inf in dupes.select("patient_id", "infusion").unique(maintain_order=True).iter_rows():
        problems.append(InputProblem(name, f"patient {pid} infusion {inf} is listed twice", 0, "infusion", str(inf)))
    return Infusions(table.unique(["patient_id", "infusion"], keep="first", maintain_order=True), problems)


def _age(frame: pl.DataFrame) -> pl.Expr:
    """Age at infusion: age_years as given, else completed years from birth_date."""
    given = pl.col("age_years").str.strip_chars().cast(pl.Float64, strict=False) if "age_years" in frame.columns else None
    if "birth_date" not in frame.columns:
        return given if given is not None else pl.lit(None, dtype=pl.Float64)
    birth = parse_timestamps(pl.col("birth_date"))["naive"].dt.date()
    infused = pl.from_epoch("local_us", time_unit="us").dt.date()
    years = infused.dt.year() - birth.dt.year()
    before_birthday = (infused.dt.month() < birth.dt.month()) | (
        (infused.dt.month() == birth.dt.month()) & (infused.dt.day() < birth.dt.day())
    )
    completed = (years - before_birthday.cast(pl.Int32)).cast(pl.Float64)
    return pl.coalesce(given, completed) if given is not None else completed


def with_source_ages(infusions: Infusions, births: pl.DataFrame | None) -> Infusions:
    """Ages from the source's birth dates (completed years at the infusion date)
    where the infusions file gives neither age_years nor birth_date."""
    if births is None or not births.height:
        return infusions
    dated = (
        births.select(pl.col("patient_id"), parse_timestamps(pl.col("birth_date"))["naive"].dt.date().alias("_born"))
        .drop_nulls()
        .unique("patient_id", keep="first")
    )
    table = infusions.table.join(dated, on="patient_id", how="left")
    born, infused = pl.col("_born"), pl.col("local_date")
    before_birthday = (infused.dt.month() < born.dt.month()) | (
        (infused.dt.month() == born.dt.month()) & (infused.dt.day() < born.dt.day())
    )
    completed = (infused.dt.year() - born.dt.year() - before_birthday.cast(pl.Int32)).cast(pl.Float64)
    table = table.with_columns(age_years=pl.coalesce("age_years", completed)).drop("_born")
    return Infusions(table, infusions.problems)
