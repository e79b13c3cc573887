"""CodeableConcepts matched to the mapping's codes: one row per coding, the first
coding of each record that the mapping reads, the concept of a referenced resource
(Medication, Device), and the records whose codes are not read."""

from __future__ import annotations

import polars as pl

from carscore.importer.events import Read
from carscore.importer.fhir.codes import Target
from carscore.importer.fhir.resources import record_problems


def codings_of(frame: pl.DataFrame, concept: pl.Expr, key: str) -> pl.DataFrame:
    """One row per coding of a CodeableConcept: key, _ci (its place), _system, _code, _display."""
    return (
        frame.select(key, concept.struct.field("coding").alias("_coding"))
        .explode("_coding")
        .filter(pl.col("_coding").is_not_null())
        .with_columns(_ci=pl.int_range(pl.len(), dtype=pl.Int64).over(key))
        .select(
            key,
            "_ci",
            pl.col("_coding")
            .struct.field("system")
            .str.strip_chars()
            .str.strip_chars_end("/")
            .str.to_lowercase()
            .alias("_system"),
            pl.col("_coding").struct.field("code").str.strip_chars().alias("_code"),
            pl.col("_coding").struct.field("display").alias("_display"),
        )
    )


def first_match(codings: pl.DataFrame, table: pl.DataFrame, key: str, column_systems: set[str]) -> pl.DataFrame:
    """The first coding of each key found in a code table (_system, _code, _t)."""
    codings = codings.with_columns(
        _code=pl.when(pl.col("_system").is_in(list(column_systems)))
        .then(pl.col("_code").str.to_lowercase().str.replace_all(r"[\s\-]+", "_"))
        .otherwise(pl.col("_code"))
    )
    return codings.join(table, on=["_system", "_code"], how="inner").sort([key, "_ci"]).unique(key, keep="first").drop("_ci")


def foreign_codes(
    unmatched: pl.DataFrame, codings: pl.DataFrame, key: str, column_systems: set[str], out: Read, message: str
) -> pl.DataFrame:
    """The records no code of the mapping took that are coded in a system whose codes are
    contract columns (the carscore code system): each is a problem, not a count (import.md §7).
    Returned, so that only the others are counted as not read."""
    foreign = unmatched.join(codings.filter(pl.col("_system").is_in(list(column_systems))).unique(key, keep="first"), on=key)
    record_problems(
        out,
        foreign.with_columns(_shown=pl.concat_str([pl.col("_system"), pl.lit("|"), pl.col("_code")])),
        message,
        "code",
        "_shown",
    )
    return foreign


def note_unread(out: Read, what: str, codings: pl.DataFrame, keys: pl.DataFrame, key: str) -> None:
    """Records of a vocabulary this mapping does not read: skipped, counted by code."""
    if not keys.height:
        return
    first = codings.sort([key, "_ci"]).unique(key, keep="first")
    named = (
        keys.select(key)
        .join(first, on=key, how="left")
        .with_columns(
            _name=pl.when(pl.col("_code").is_null())
            .then(pl.lit("no code"))
            .otherwise(pl.concat_str([pl.coalesce("_system", pl.lit("?")), pl.lit("|"), pl.col("_code")]))
        )
    )
    top = named.group_by("_name").len().sort(["len", "_name"], descending=[True, False]).head(8)
    listed = ", ".join(f"{n} ({c})" for n, c in top.iter_rows())
    out.notes.append(f"{keys.height} {what} with codes this mapping does not read were skipped: {listed}")


def code_table(targets: dict[tuple[str, str], Target]) -> tuple[pl.DataFrame, list[Target]]:
    """A section's codes as a frame to join (_system, _code, _t, column), and the targets by _t."""
    listed = list(targets.items())
    table = pl.DataFrame(
        {
            "_system": [s for (s, _), _ in listed],
            "_code": [c for (_, c), _ in listed],
            "_t": list(range(len(listed))),
            "column": [t.column for _, t in listed],
        },
        schema={"_system": pl.String, "_code": pl.String, "_t": pl.Int64, "column": pl.String},
    )
    return table, [t for _, t in listed]


def referenced_codes(frame: pl.DataFrame, reference: pl.Expr, kind: str, concept: str, resources: pl.DataFrame) -> pl.DataFrame:
    """_src and the CodeableConcept (as _concept) of the resource each record references:
    "<kind>/<id>" among the resources read, or "#id" contained in the record."""
    refs = frame.select("_src", reference.str.strip_chars().alias("_ref"), "contained").filter(pl.col("_ref").is_not_null())
    listed = resources.filter(pl.col("resourceType") == kind).select(
        pl.concat_str([pl.lit(f"{kind}/"), pl.col("id")]).alias("_key"), pl.col(concept).alias("_concept")
    )
    outside = refs.with_columns(_key=pl.col("_ref").str.extract(rf"((?:^|/){kind}/[^/]+)", 1).str.strip_chars_start("/")).join(
        listed, on="_key", how="inner"
    )
    inside = (
        refs.filter(pl.col("_ref").str.starts_with("#"))
        .explode("contained")
        .filter(pl.col("contained").struct.field("resourceType") == kind)
        .filter(pl.concat_str([pl.lit("#"), pl.col("contained").struct.field("id")]) == pl.col("_ref"))
        .select("_src", pl.col("contained").struct.field(concept).alias("_concept"))
    )
    return pl.concat([outside.select("_src", "_concept"), inside]).unique("_src", keep="first")
