"""MedicationAdministrations read into events: the drug by its medicationCodeableConcept
or the Medication it references; a vasopressor runs over its effectivePeriod (a start
and a stop), another drug is given at its effective time, and a drug with an indication
counts only when no other reason is stated."""

from __future__ import annotations

import re

import polars as pl

from carscore.importer.events import DRIP_COLUMNS, Read, conform, empty
from carscore.importer.fhir.codes import FhirCodes
from carscore.importer.fhir.concepts import code_table, codings_of, first_match, note_unread, referenced_codes
from carscore.importer.fhir.resources import record_problems, utc_us


def read_medications(frame: pl.DataFrame, resources: pl.DataFrame, codes: FhirCodes, naive: str, out: Read) -> pl.DataFrame:
    if not frame.height:
        return empty()
    referenced = referenced_codes(frame, pl.col("medicationReference").struct.field("reference"), "Medication", "code", resources)
    frame = frame.join(referenced, on="_src", how="left").with_columns(
        _drug=pl.coalesce(pl.col("medicationCodeableConcept"), pl.col("_concept"))
    )
    table, targets = code_table(codes.medications)
    codings = codings_of(frame, pl.col("_drug"), "_src")
    matched = first_match(codings, table, "_src", codes.column_systems)
    note_unread(out, "MedicationAdministrations", codings, frame.join(matched, on="_src", how="anti"), "_src")
    frame = frame.join(matched.select("_src", "_t", "column"), on="_src", how="inner")
    if not frame.height:
        return empty()
    meta = pl.DataFrame(
        {
            "_t": list(range(len(targets))),
            "agent": [t.agent for t in targets],
            "_indication": [t.indication for t in targets],
        },
        schema={"_t": pl.Int64, "agent": pl.String, "_indication": pl.String},
    )
    frame = frame.join(meta, on="_t", how="left")
    frame = _for_indication(frame, codes, out)
    dose = pl.col("dosage").struct.field("dose").struct.field("value")
    rate = pl.col("dosage").struct.field("rateQuantity").struct.field("value")
    zero = frame.filter((dose == 0) | (rate == 0))
    if zero.height:
        out.notes.append(f"{zero.height} MedicationAdministrations with a dose or rate of 0 were not counted as given or running")
    frame = frame.filter(~((dose == 0) | (rate == 0)).fill_null(False))
    start = pl.col("effectivePeriod").struct.field("start").str.strip_chars()
    end = pl.col("effectivePeriod").struct.field("end").str.strip_chars()
    at = pl.col("effectiveDateTime").str.strip_chars()
    drips = frame.filter(pl.col("column").is_in(DRIP_COLUMNS))
    boluses = drips.filter(start.is_null())
    instants = drips.filter(utc_us(start) == utc_us(end)).height
    if boluses.height or instants:
        out.notes.append(
            f"{boluses.height + instants} vasopressor administrations without a period (boluses) do not count as running"
        )
    drips = drips.filter(start.is_not_null()).with_columns(_from=utc_us(start), _to=utc_us(end))
    backwards = drips.filter(pl.col("_to") < pl.col("_from")).with_columns(_end=end)
    record_problems(
        out, backwards, "effectivePeriod ends before it starts: read from its start only", "effectivePeriod.end", "_end"
    )
    end = pl.when(pl.col("_to").is_null() | (pl.col("_to") > pl.col("_from"))).then(end)
    # a period of no length is an administration at one instant: not a running drip
    drips = drips.filter((pl.col("_to") != pl.col("_from")).fill_null(True))
    # each administration is its own order: an agent runs while any of them runs (import.md §8)
    order = pl.concat_str([pl.coalesce(pl.col("request").struct.field("reference"), pl.lit("")), pl.lit("#"), pl.col("_src")])
    # a start at the period's start, a stop at its end (conform puts the columns in order)
    drip = ["patient_id", "column", "agent", order.alias("order_id"), pl.col("_src").alias("source")]
    starts = drips.select(*drip, start.alias("stamp"), pl.lit("start").alias("kind"))
    stops = drips.filter(end.is_not_null()).select(*drip, end.alias("stamp"), pl.lit("stop").alias("kind"))
    given = frame.filter(~pl.col("column").is_in(DRIP_COLUMNS)).with_columns(stamp=pl.coalesce(at, start))
    untimed = given.filter(pl.col("stamp").is_null())
    record_problems(
        out,
        untimed.with_columns(_none=pl.lit("")),
        "a MedicationAdministration without effective[x]: record skipped",
        "effective",
        "_none",
    )
    given = given.filter(pl.col("stamp").is_not_null()).select(
        "patient_id",
        "stamp",
        "column",
        "agent",
        pl.lit("given").alias("kind"),
        pl.lit("yes").alias("text"),
        pl.col("_src").alias("source"),
    )
    return pl.concat([conform(starts), conform(stops), conform(given)]).with_columns(naive=pl.lit(naive))


def _for_indication(frame: pl.DataFrame, codes: FhirCodes, out: Read) -> pl.DataFrame:
    """A drug with an indication filter (corticosteroids: CRS or ICANS, contract §1) counts when
    no reason is stated, or when a stated reason is one of the indication's codes or words;
    a drug given for another stated reason (premedication, GVHD, ...) is not counted."""
    filtered = frame.filter(pl.col("_indication").is_not_null())
    if not filtered.height:
        return frame
    reasons = (
        filtered.select("_src", "_indication", "reasonCode").explode("reasonCode").filter(pl.col("reasonCode").is_not_null())
    )
    stated = filtered.select("_src", "_indication", "reasonReference").explode("reasonReference")
    # a reason referenced without a display cannot be read: as if no reason were stated
    stated = stated.select("_src", "_indication", pl.col("reasonReference").struct.field("display").alias("_text")).filter(
        pl.col("_text").is_not_null()
    )
    coded = reasons.select("_src", "_indication", pl.col("reasonCode").struct.field("coding").alias("_coding")).explode("_coding")
    coded = coded.filter(pl.col("_coding").is_not_null()).select(
        "_src",
        "_indication",
        pl.col("_coding").struct.field("system").str.strip_chars().str.strip_chars_end("/").str.to_lowercase().alias("_system"),
        pl.col("_coding").struct.field("code").str.strip_chars().alias("_code"),
        pl.col("_coding").struct.field("display").alias("_text"),
    )
    texts = pl.concat(
        [
            reasons.select("_src", "_indication", pl.col("reasonCode").struct.field("text").alias("_text")),
            coded.select("_src", "_indication", "_text"),
            stated,
        ]
    ).with_columns(_text=pl.col("_text").str.to_lowercase())
    fits = []
    for name, indication in codes.indications.items():
        for system, code in indication.codes:
            test = pl.col("_code").str.starts_with(code[:-1]) if code.endswith("*") else pl.col("_code") == code
            fits.append(coded.filter((pl.col("_indication") == name) & (pl.col("_system") == system) & test).select("_src"))
        for word in indication.words:
            pattern = rf"(^|[^a-z0-9]){re.escape(word)}($|[^a-z0-9])"
            fits.append(texts.filter((pl.col("_indication") == name) & pl.col("_text").str.contains(pattern)).select("_src"))
    fitting = pl.concat(fits).unique() if fits else pl.DataFrame(schema={"_src": pl.String})
    with_reason = pl.concat([reasons.select("_src"), stated.select("_src")]).unique()
    other = filtered.join(with_reason, on="_src", how="semi").join(fitting, on="_src", how="anti")
    if other.height:
        out.notes.append(
            f"{other.height} administrations given for another stated reason than their indication were not counted "
            f"({', '.join(sorted(set(other['column'].to_list())))})"
        )
    return frame.join(other.select("_src"), on="_src", how="anti")
