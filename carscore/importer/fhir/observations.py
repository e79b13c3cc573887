"""Observations read into events: each value one holds (itself and each component) by
its code's target; numbers from valueQuantity, valueInteger or text; words from a value
map, valueBoolean or the contract's enum words; Observation.method into its own column."""

from __future__ import annotations

import polars as pl

from carscore.contract import Contract
from carscore.importer.events import STATE_COLUMNS, Read, conform, empty
from carscore.importer.fhir.codes import FhirCodes, Target
from carscore.importer.fhir.concepts import code_table, codings_of, first_match, foreign_codes, note_unread
from carscore.importer.fhir.ndjson import VALUE_FIELDS
from carscore.importer.fhir.resources import record_problems
from carscore.importer.values import BOUND, NO_VALUE, NOT_DETECTED

# how a boolean column is written (contract §1)
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


def _value_keys(targets: list[Target], codes: FhirCodes, contract: Contract, method: bool = False) -> pl.DataFrame:
    """_t, _key, _mapped: every key a value can be read by for each target: its value map,
    oxygen devices (o2_device), and the enum words of a column system."""
    rows = []
    for i, target in enumerate(targets):
        target = (target.method or Target("")) if method else target
        if not target.column:
            continue
        for key, value in target.values:
            rows.append((i, key, value))
        if target.column == "o2_device":
            rows += [(i, f"{s}|{c}", d) for (s, c), d in codes.devices.items()]
        column = contract.columns[target.column]
        words = column.values if column.kind == "enum" else ("yes", "no", "true", "false") if column.kind == "boolean" else ()
        rows += [(i, f"{s}|{w}", w) for s in codes.column_systems for w in words]
    return pl.DataFrame(rows, schema={"_t": pl.Int64, "_key": pl.String, "_mapped": pl.String}, orient="row").unique(
        ["_t", "_key"], keep="first", maintain_order=True
    )


def _coded_value(entries: pl.DataFrame, concept: str, keys: pl.DataFrame, codes: FhirCodes, key: str = "_eid") -> pl.DataFrame:
    """key, _coded: a CodeableConcept's value for its target: the first coding found among the
    target's keys, else its text or a coding's display when the map names that word."""
    codings = codings_of(entries, pl.col(concept), key).join(entries.select(key, "_t"), on=key)
    codings = codings.with_columns(
        _key=pl.concat_str(
            [
                pl.col("_system"),
                pl.lit("|"),
                pl.when(pl.col("_system").is_in(list(codes.column_systems)))
                .then(pl.col("_code").str.to_lowercase().str.replace_all(r"[\s\-]+", "_"))
                .otherwise(pl.col("_code")),
            ]
        )
    )
    by_code = codings.join(keys, on=["_t", "_key"], how="inner").sort([key, "_ci"]).unique(key, keep="first")
    words = pl.concat(
        [
            entries.select(
                key, "_t", pl.col(concept).struct.field("text").alias("_word"), pl.lit(-1, dtype=pl.Int64).alias("_ci")
            ),
            codings.select(key, "_t", pl.col("_display").alias("_word"), "_ci"),
        ]
    ).with_columns(_key=pl.col("_word").str.strip_chars().str.to_lowercase())
    by_word = words.join(keys, on=["_t", "_key"], how="inner").sort([key, "_ci"]).unique(key, keep="first")
    return (
        entries.select(key)
        .join(by_code.select(key, pl.col("_mapped").alias("_by_code")), on=key, how="left")
        .join(by_word.select(key, pl.col("_mapped").alias("_by_word")), on=key, how="left")
        .select(key, pl.coalesce("_by_code", "_by_word").alias("_coded"))
    )


def _entries(observations: pl.DataFrame) -> pl.DataFrame:
    """One row per value an Observation holds: itself (_part 0) and each component (1, 2 ...)."""
    base = ["_src", "patient_id", "stamp", "method"]
    own = observations.select(
        *base,
        pl.lit(0, dtype=pl.Int64).alias("_part"),
        "code",
        *VALUE_FIELDS,
        (pl.col("component").list.len().fill_null(0) > 0).alias("_panel"),
    )
    parts = (
        observations.select(*base, "component")
        .explode("component")
        .filter(pl.col("component").is_not_null())
        .with_columns(_part=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("_src"))
        .select(
            *base,
            "_part",
            pl.col("component").struct.field("code").alias("code"),
            *[pl.col("component").struct.field(v).alias(v) for v in VALUE_FIELDS],
            pl.lit(False).alias("_panel"),
        )
    )
    entries = pl.concat([own, parts])
    return entries.with_columns(_eid=pl.int_range(pl.len(), dtype=pl.Int64))


def read_observations(frame: pl.DataFrame, codes: FhirCodes, contract: Contract, naive: str, out: Read) -> pl.DataFrame:
    if not frame.height:
        return empty()
    frame = frame.with_columns(
        stamp=pl.coalesce(
            pl.col("effectiveDateTime"), pl.col("effectivePeriod").struct.field("start"), pl.col("effectiveInstant")
        ).str.strip_chars()
    )
    untimed = frame.filter(pl.col("stamp").is_null() | (pl.col("stamp") == ""))
    record_problems(
        out, untimed.with_columns(_none=pl.lit("")), "an Observation without effective[x]: record skipped", "effective", "_none"
    )
    frame = frame.filter(pl.col("stamp").is_not_null() & (pl.col("stamp") != ""))
    entries = _entries(frame)
    has_value = pl.any_horizontal([pl.col(v).is_not_null() for v in VALUE_FIELDS])
    table, targets = code_table(codes.observations)
    codings = codings_of(entries, pl.col("code"), "_eid")
    matched = first_match(codings, table, "_eid", codes.column_systems)
    # a code of a column system that names no column: an error until mapped (import.md §7)
    unmatched = entries.join(matched.select("_eid"), on="_eid", how="anti")
    foreign = foreign_codes(
        unmatched,
        codings,
        "_eid",
        codes.column_systems,
        out,
        "a code of the carscore code system that is not a column an Observation can carry: record skipped",
    )
    unread = unmatched.join(foreign.select("_eid"), on="_eid", how="anti").filter(has_value | ~pl.col("_panel"))
    note_unread(out, "Observation values", codings, unread, "_eid")
    entries = entries.join(matched.select("_eid", "_t", "column"), on="_eid", how="inner")
    empty_values = entries.filter(~has_value)
    if empty_values.height:
        out.notes.append(f"{empty_values.height} Observations of read codes hold no value (dataAbsentReason?) and were skipped")
    entries = entries.filter(has_value)
    events = _observation_values(entries, targets, codes, contract, out)
    methods = _methods(entries, targets, codes, contract, out)
    return pl.concat([events, methods]).with_columns(naive=pl.lit(naive))


def _observation_values(
    entries: pl.DataFrame, targets: list[Target], codes: FhirCodes, contract: Contract, out: Read
) -> pl.DataFrame:
    keys = _value_keys(targets, codes, contract)
    coded = _coded_value(entries.filter(pl.col("valueCodeableConcept").is_not_null()), "valueCodeableConcept", keys, codes)
    entries = entries.join(coded, on="_eid", how="left")
    # a word of the value map written as valueString
    spoken = entries.select("_eid", "_t", pl.col("valueString").str.strip_chars().str.to_lowercase().alias("_key")).join(
        keys, on=["_t", "_key"], how="inner"
    )
    entries = entries.join(spoken.select("_eid", pl.col("_mapped").alias("_said")), on="_eid", how="left")
    numeric_columns = [n for n, c in contract.columns.items() if c.numeric]
    units = pl.DataFrame(
        {"_t": list(range(len(targets))), "_implied": [t.unit for t in targets]}, schema={"_t": pl.Int64, "_implied": pl.String}
    )
    entries = entries.join(units, on="_t", how="left")
    quantity = pl.col("valueQuantity")
    q_system = quantity.struct.field("system").str.strip_chars().str.strip_chars_end("/").str.to_lowercase()
    ucum = quantity.struct.field("code").str.strip_chars()
    q_unit = pl.when(ucum.is_not_null() & (ucum != "") & (q_system.is_null() | (q_system == "http://unitsofmeasure.org")))
    q_unit = q_unit.then(ucum).otherwise(quantity.struct.field("unit").str.strip_chars())
    concept = pl.col("valueCodeableConcept")
    written = pl.coalesce(
        pl.col("_coded"),
        pl.col("_said"),
        pl.col("valueString").str.strip_chars(),
        concept.struct.field("text"),
        concept.struct.field("coding").list.first().struct.field("display"),
        concept.struct.field("coding").list.first().struct.field("code"),
    )
    value_number = quantity.struct.field("value")
    entries = entries.with_columns(
        _numeric=pl.col("column").is_in(numeric_columns),
        _written=written,
        _q=value_number,
        _comparator=quantity.struct.field("comparator").str.strip_chars(),
        unit=pl.when(value_number.is_not_null()).then(pl.coalesce(q_unit, pl.col("_implied"))).otherwise(pl.col("_implied")),
    )
    numeric = _numbers(entries.filter(pl.col("_numeric")), out)
    words = _words(entries.filter(~pl.col("_numeric")), contract, out)
    return pl.concat([numeric, words])


def _numbers(entries: pl.DataFrame, out: Read) -> pl.DataFrame:
    """Numeric columns: valueQuantity (its comparator kept in the source), valueInteger, or a
    number written as text ("<5" is 5, "not detected" 0; results that state no value skipped)."""
    text = pl.col("_written")
    bound = text.str.extract(BOUND.pattern, 2).str.replace(",", ".")
    from_text = (
        pl.when(bound.is_not_null())
        .then(bound)
        .when(text.str.contains(NOT_DETECTED.pattern))
        .then(pl.lit("0"))
        .otherwise(text.str.replace(",", "."))
        .cast(pl.Float64, strict=False)
    )
    entries = entries.with_columns(
        number=pl.coalesce(pl.col("_q"), pl.col("valueInteger").cast(pl.Float64), from_text),
        _bound=pl.coalesce(pl.col("_comparator"), text.str.extract(BOUND.pattern, 1)),
        _nothing=pl.col("_q").is_null() & pl.col("valueInteger").is_null() & text.str.contains(NO_VALUE.pattern).fill_null(False),
    )
    nothing = entries.filter(pl.col("_nothing"))
    if nothing.height:
        out.notes.append(f"{nothing.height} Observation results that state no value were skipped")
    entries = entries.filter(~pl.col("_nothing"))
    bad = entries.filter(pl.col("number").is_null() | ~pl.col("number").is_finite())
    record_problems(
        out,
        bad.with_columns(_shown=pl.coalesce(text, pl.col("valueBoolean").cast(pl.String))),
        "is not a number for its column: record skipped",
        "value",
        "_shown",
    )
    entries = entries.filter(pl.col("number").is_not_null() & pl.col("number").is_finite())
    return entries.with_columns(
        kind=pl.when(pl.col("column").is_in(STATE_COLUMNS)).then(pl.lit("state")).otherwise(pl.lit("measure")),
        text=pl.lit(None, dtype=pl.String),
        source=pl.when(pl.col("_bound").is_not_null())
        .then(pl.concat_str([pl.col("_src"), pl.lit(" ("), pl.col("_bound"), pl.lit(")")]))
        .otherwise(pl.col("_src")),
    ).pipe(conform)


def _words(entries: pl.DataFrame, contract: Contract, out: Read) -> pl.DataFrame:
    """Enum, boolean and dose columns: a code of the value's map or of the carscore system,
    valueBoolean, a word; an enum or boolean value the contract does not know is an error."""
    number_text = pl.col("_q").cast(pl.String).str.replace(r"\.0$", "")
    integer = pl.col("valueInteger").cast(pl.String)
    boolean = pl.when(pl.col("valueBoolean")).then(pl.lit("yes")).when(pl.col("valueBoolean").is_not_null()).then(pl.lit("no"))
    raw = pl.coalesce(boolean, pl.col("_written"), number_text, integer)
    entries = entries.with_columns(_raw=raw, _word=raw.str.strip_chars().str.to_lowercase().str.replace_all(r"[\s\-]+", "_"))
    allowed = [(name, word) for name, c in contract.columns.items() if c.kind == "enum" for word in c.values]
    allowed += [(name, w) for name, c in contract.columns.items() if c.kind == "boolean" for w in (*_YES, *_NO)]
    words = pl.DataFrame(allowed, schema={"column": pl.String, "_word": pl.String}, orient="row").with_columns(_ok=pl.lit(True))
    checked = [n for n, c in contract.columns.items() if c.kind in ("enum", "boolean")]
    entries = entries.join(words, on=["column", "_word"], how="left").with_columns(
        _ok=pl.col("_ok").fill_null(False) | ~pl.col("column").is_in(checked)
    )
    unknown = entries.filter(~pl.col("_ok"))
    record_problems(
        out, unknown, "is not a value this mapping knows for its column: map it in 'values' or fix the record", "value", "_raw"
    )
    # an unreadable device charting ends the state before it (import.md §2); other values are skipped
    entries = entries.filter(pl.col("_ok") | (pl.col("column") == "o2_device"))
    is_boolean = pl.col("column").is_in([n for n, c in contract.columns.items() if c.kind == "boolean"])
    text = (
        pl.when(~pl.col("_ok"))
        .then(None)
        .when(is_boolean & pl.col("_word").is_in(list(_YES)))
        .then(pl.lit("yes"))
        .when(is_boolean)
        .then(pl.lit("no"))
        .when(pl.col("column").is_in(checked))
        .then(pl.col("_word"))
        .otherwise(pl.col("_raw"))
    )
    return entries.with_columns(
        kind=pl.when(pl.col("column").is_in(STATE_COLUMNS)).then(pl.lit("state")).otherwise(pl.lit("measure")),
        text=text,
        number=pl.lit(None, dtype=pl.Float64),
        unit=pl.lit(None, dtype=pl.String),
        source=pl.col("_src"),
    ).pipe(conform)


def _methods(entries: pl.DataFrame, targets: list[Target], codes: FhirCodes, contract: Contract, out: Read) -> pl.DataFrame:
    """Observation.method read into the column its target names (MRD: flow, ngs, pcr)."""
    with_method = [i for i, t in enumerate(targets) if t.method is not None]
    chosen = entries.filter(pl.col("_t").is_in(with_method) & pl.col("method").is_not_null() & (pl.col("_part") == 0))
    if not chosen.height:
        return empty()
    keys = _value_keys(targets, codes, contract, method=True)
    coded = _coded_value(chosen, "method", keys, codes)
    columns = pl.DataFrame(
        {"_t": with_method, "_mcol": [targets[i].method.column for i in with_method]},  # type: ignore[union-attr]
        schema={"_t": pl.Int64, "_mcol": pl.String},
    )
    chosen = chosen.join(coded, on="_eid", how="left").join(columns, on="_t")
    concept = pl.col("method")
    written = pl.coalesce(
        pl.col("_coded"), concept.struct.field("text"), concept.struct.field("coding").list.first().struct.field("code")
    )
    chosen = chosen.with_columns(
        _raw=written, _word=written.str.strip_chars().str.to_lowercase().str.replace_all(r"[\s\-]+", "_")
    )
    allowed = [(name, w) for name, c in contract.columns.items() if c.kind == "enum" for w in c.values]
    words = pl.DataFrame(allowed, schema={"_mcol": pl.String, "_word": pl.String}, orient="row").with_columns(_ok=pl.lit(True))
    chosen = chosen.join(words, on=["_mcol", "_word"], how="left")
    record_problems(
        out,
        chosen.filter(pl.col("_ok").is_null()),
        "is not a method this mapping knows (the value itself was read)",
        "method",
        "_raw",
    )
    chosen = chosen.filter(pl.col("_ok").is_not_null())
    return chosen.select(
        "patient_id",
        "stamp",
        pl.col("_mcol").alias("column"),
        pl.col("_word").alias("text"),
        pl.lit("measure").alias("kind"),
        pl.col("_src").alias("source"),
    ).pipe(conform)
