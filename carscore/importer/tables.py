"""Reading tabular exports (CSV, Parquet, SAS XPT) into events, as a mapping
file says: long tables (a code column and a value column), wide tables (one
column per value, optionally decoded by a REDCap data dictionary) and
interval tables (a start and an end on each record). Every step is a polars
expression or join over the whole table; Python loops only over the
mapping's codes and a data dictionary's lines, never over records.

This module reads one table: its records that count, laid out one per value,
matched to the mapping's targets and their qualifiers, then valued. The steps
are files.py, records.py, forms.py, dictionary.py, values.py,
administrations.py and intervals.py."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from carscore.contract import Contract
from carscore.errors import InputProblem
from carscore.importer.cells import column_or_blank, condition, filled
from carscore.importer.dictionary import decoded, find_beside, read_choices, rename_labelled
from carscore.importer.events import Read, conform, empty
from carscore.importer.files import find_files, read_text_table
from carscore.importer.forms import long_form, wide_form
from carscore.importer.intervals import interval_events
from carscore.importer.mapping import Mapping
from carscore.importer.mapping_tables import CodeMap, Table
from carscore.importer.records import records_that_count
from carscore.importer.values import SKIP, contract_values

# the readers' result and the file finders, importable from here as before
__all__ = ["Read", "find_files", "read_table", "read_text_table"]


def _lookup(targets: list[tuple[str, CodeMap]], table: Table, contract: Contract) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The targets as frames to join: one row per (code, target), and the
    word maps of the targets that have one."""
    rows, words = [], []
    default_kind = table.kind if table.kind in ("measure", "state") else "measure"
    for i, (code, m) in enumerate(targets):
        column = contract.columns.get(m.column)
        rows.append(
            {
                "_code": code,
                "_target": i,
                "column": m.column,
                "_ckind": column.kind if column else "text",
                "_kind": m.kind or default_kind,
                "_unit": m.unit,
                "agent": m.agent,
                "_first": m.first_number,
            }
        )
        for word, value in m.values.items():
            folded = re.sub(r"[\s\-_]+", "_", word)
            words.append({"_target": i, "_word": folded, "_mapped": SKIP if value is None else value})
    codes = pl.DataFrame(
        rows,
        schema={
            "_code": pl.String,
            "_target": pl.Int64,
            "column": pl.String,
            "_ckind": pl.String,
            "_kind": pl.String,
            "_unit": pl.String,
            "agent": pl.String,
            "_first": pl.Boolean,
        },
    )
    word_map = pl.DataFrame(words, schema={"_target": pl.Int64, "_word": pl.String, "_mapped": pl.String})
    return codes, word_map


def _by_target(targets: list[tuple[str, CodeMap]], pick, otherwise: pl.Expr) -> pl.Expr:  # type: ignore[no-untyped-def]
    """An expression that is ``pick(target)`` on the rows of each target where
    that gives one, else ``otherwise``."""
    chosen = [(i, e) for i, (_, m) in enumerate(targets) if (e := pick(m)) is not None]
    if not chosen:
        return otherwise
    expr = pl.when(pl.col("_target") == chosen[0][0]).then(chosen[0][1])
    for i, e in chosen[1:]:
        expr = expr.when(pl.col("_target") == i).then(e)
    return expr.otherwise(otherwise)


def read_table(table: Table, path: Path, frame: pl.DataFrame, mapping: Mapping, contract: Contract, out: Read) -> pl.DataFrame:
    """The events of one source table as the mapping reads it; its problems and notes go to ``out``."""
    name = path.name
    choices = None
    checkbox_fields: set[str] = set()
    if table.dictionary is not None:
        found = find_beside(path, table.dictionary.files)
        if found is None:
            out.problems.append(
                InputProblem(
                    name,
                    f"no data dictionary beside it (looked for {', '.join(table.dictionary.files)}): "
                    "choice codes are read as written",
                    0,
                )
            )
        else:
            choices, labels, checkbox_fields = read_choices(found, table.dictionary, out)
            frame = rename_labelled(frame, labels, choices)
    required = [*table.time[:1], *table.interval, table.key, table.patient]
    if table.actions:
        required.append(table.action)
    missing = [c for c in required if c and c not in frame.columns]
    for wanted in (table.code, [] if table.fields or table.contract_fields else table.value):
        if wanted and not any(c in frame.columns for c in wanted):
            missing.append(" or ".join(wanted))
    if missing:
        out.problems.append(InputProblem(name, f"the {table.name} table has no column {', '.join(missing)}", 1, missing[0]))
        return empty()
    total = frame.height
    given = [c for c in frame.columns if c != "_line"]  # the source's own columns
    frame = records_that_count(table, name, frame, out)

    # patient ids: given, or joined through the mapping's patients table by the caller
    if not table.key:
        frame = frame.with_columns(pl.col(table.patient).str.strip_chars().alias("patient_id"))  # type: ignore[arg-type]
    # timestamps: one column, or a date column and a time column
    stamp = pl.col(table.time[0]).str.strip_chars()
    if len(table.time) > 1 and table.time[1] in frame.columns:
        clock = pl.col(table.time[1]).str.strip_chars()
        stamp = pl.when(filled(clock)).then(pl.concat_str([stamp, pl.lit("T"), clock])).otherwise(stamp)
    naive = table.naive_time or mapping.naive_time
    source = pl.concat_str([pl.lit(f"{name}:"), pl.col("_line").cast(pl.String)])
    frame = frame.with_columns(
        stamp=stamp,
        naive=pl.lit(naive),
        source=source,
        _rec=source,
        _end_stamp=pl.when(filled(pl.col(table.interval[1]))).then(pl.col(table.interval[1]).str.strip_chars())
        if table.interval
        else pl.lit(None, dtype=pl.String),
    )

    if table.fields or table.contract_fields:
        targets, long = wide_form(table, frame, given, contract, checkbox_fields)
    else:
        targets, long = long_form(table, frame, mapping, name, out)
    codes, word_map = _lookup(targets, table, contract)
    matched = long.join(codes, on="_code", how="inner")
    # a target's qualifiers (specimen, indication ...): records no target of their code takes are counted
    where = _by_target(
        targets,
        lambda m: (
            pl.all_horizontal([condition(column_or_blank(long, c), alt) for c, alt in m.where.items()]) if m.where else None
        ),
        pl.lit(True),
    )
    matched = matched.with_columns(_holds=where)
    kept = matched.filter(pl.col("_holds"))
    left_out = matched.select("_rec").unique().join(kept.select("_rec").unique(), on="_rec", how="anti")
    if left_out.height:
        out.notes.append(
            f"{name}: {left_out.height} records of codes this mapping reads were skipped: their qualifiers "
            f"(specimen, indication ...) fit no target (first: {left_out['_rec'][0]})"
        )
    matched = kept
    # values read from another column of the record, or set by the mapping
    matched = matched.with_columns(
        _value=_by_target(
            targets,
            lambda m: (
                pl.lit(m.set_value)
                if m.set_value is not None
                else (column_or_blank(long, m.from_column) if m.from_column else None)
            ),
            pl.col("_value"),
        )
    )
    if table.fields or table.contract_fields:
        matched = decoded(matched, choices)
    if table.split:
        matched = matched.with_columns(pl.col("_value").str.split(table.split)).explode("_value")
        matched = matched.with_columns(pl.col("_value").str.strip_chars())
    matched = matched.filter(filled(pl.col("_value")))
    matched = matched.with_columns(unit=pl.coalesce("_unit", "_unit_row"))
    events = contract_values(matched, word_map, targets, table, contract, name, out)
    if table.interval:
        events = interval_events(events, table, name, out)
    events = conform(events)
    if table.kind in ("drip", "given"):
        out.medications_read = True
    if events.height:
        # an interval source says "none" outside its intervals only once it holds one
        out.outside.update(table.outside)
    out.notes.append(f"{name}: {total} records read as the {table.name} table, {events.height} values taken")
    return events
