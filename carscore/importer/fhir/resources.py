"""FHIR records as the reader counts and cites them: one version per resource id, the
status that says a record exists and is final, a stamp as a UTC instant, and problems
cited by record ("file:line#Type/id")."""

from __future__ import annotations

import polars as pl

from carscore.errors import InputProblem
from carscore.importer.clock import parse_timestamps
from carscore.importer.events import Read
from carscore.importer.rows import problem

# import.md §3: dropped (the record does not exist) and skipped (not yet a result), by status
DROPPED = ("entered-in-error", "cancelled", "not-done")
SKIPPED = ("preliminary", "registered", "preparation", "intended")
# problems of one kind are listed one by one up to this many, the rest counted
PROBLEMS_SHOWN = 50


def utc_us(stamp: pl.Expr) -> pl.Expr:
    """UTC microseconds of a stamp with a clock time and an offset; null otherwise."""
    parsed = parse_timestamps(stamp)
    placed = parsed["valid"] & parsed["has_time"] & parsed["offset_min"].is_not_null()
    return pl.when(placed).then(parsed["naive"].dt.epoch("us") - parsed["offset_min"].cast(pl.Int64) * 60_000_000)


def latest_versions(resources: pl.DataFrame, out: Read) -> pl.DataFrame:
    """One record per resource id: the highest meta.versionId, else the latest
    meta.lastUpdated, else the last one read (import.md §3)."""
    key = ["resourceType", "id"]
    repeated = resources.select("_seq", *key, "meta").filter(pl.col("id").is_not_null() & pl.struct(key).is_duplicated())
    if not repeated.height:
        return resources
    ranked = repeated.with_columns(
        _version=pl.col("meta").struct.field("versionId").str.strip_chars().cast(pl.Int64, strict=False),
        _version_text=pl.col("meta").struct.field("versionId"),
        _updated=utc_us(pl.col("meta").struct.field("lastUpdated")),
    ).sort(["_version", "_version_text", "_updated", "_seq"], nulls_last=False)
    replaced = ranked.join(ranked.unique(key, keep="last").select("_seq"), on="_seq", how="anti")
    out.notes.append(f"{replaced.height} earlier versions of resources were replaced by their latest version")
    return resources.join(replaced.select("_seq"), on="_seq", how="anti", maintain_order="left")


def records_that_count(frame: pl.DataFrame, what: str, out: Read) -> pl.DataFrame:
    """Records that do not exist (entered in error, cancelled, not done) dropped; results not
    yet final (preliminary, registered) and plans (preparation, intended) skipped, counted."""
    status = pl.col("status").str.strip_chars().str.to_lowercase()
    dropped = frame.filter(status.is_in(list(DROPPED))).height
    skipped = frame.filter(status.is_in(list(SKIPPED)))
    if dropped or skipped.height:
        counts = ", ".join(f"{s} {n}" for s, n in skipped.group_by("status").len().sort("status").iter_rows())
        said = [f"{dropped} dropped by their status (entered-in-error, cancelled, not-done)"] if dropped else []
        said += [f"{skipped.height} skipped as not final ({counts})"] if skipped.height else []
        out.notes.append(f"{what}: {' and '.join(said)}")
    frame = frame.filter(~status.is_in(list(DROPPED + SKIPPED)).fill_null(True))
    no_patient = frame.filter(pl.col("patient_id").is_null())
    if no_patient.height:
        out.notes.append(f"{what}: {no_patient.height} records whose subject is not a Patient reference were skipped")
    return frame.filter(pl.col("patient_id").is_not_null())


def record_problems(out: Read, frame: pl.DataFrame, message: str, field_name: str, value: str) -> None:
    """One problem per record (source, value column), the first few only."""
    for src, shown_value in frame.select("_src", value).head(PROBLEMS_SHOWN).iter_rows():
        out.problems.append(problem(src, message, field_name, shown_value))
    if frame.height > PROBLEMS_SHOWN:
        first = problem(frame["_src"][0], message)
        out.problems.append(InputProblem(first.file, f"... and {frame.height - PROBLEMS_SHOWN} more: {message}", 0, field_name))
