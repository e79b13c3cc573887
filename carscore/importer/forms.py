"""The two layouts of a source table, each into one record per value (_code, _value,
_unit_row): the long form (a code column and a value column, codes matched as whole
cells or by words) and the wide form (one column per value, REDCap checkbox columns
var___k among them)."""

from __future__ import annotations

import re

import polars as pl

from carscore.contract import Contract
from carscore.errors import InputProblem
from carscore.importer.cells import column_or_blank, condition, filled, fold, norm
from carscore.importer.events import Read
from carscore.importer.mapping import Mapping
from carscore.importer.mapping_tables import CodeMap, Table
from carscore.importer.rows import problem

# a REDCap checkbox column: <field>___<choice code>
_CHECKBOX = re.compile(r"^(.+?)___([^_].*)$")
# contract columns that identify a row rather than hold an observation
IDENTITY = ("patient_id", "infusion", "day", "time", "age_years", "source")


def _folded(keys: list[str]) -> dict[str, str]:
    folded: dict[str, str] = {}
    for k in keys:
        folded.setdefault(re.sub(r"[\s\-_]+", "_", k.strip().lower()), k)
    return folded


def _code_matches(text: pl.Expr, keys: list[str], match: str) -> pl.Expr:
    """The code of each record: the key the cell is, or the first key whose words it holds."""
    if not keys:
        return pl.lit(None, dtype=pl.String)
    if match == "exact":
        return fold(text).replace_strict(_folded(keys), default=None, return_dtype=pl.String)
    return pl.coalesce([pl.when(text.str.contains(rf"\b{re.escape(k)}\b")).then(pl.lit(k)) for k in keys])


def _reads(text: pl.Expr, keys: list[str], match: str) -> pl.Expr:
    """Whether a code cell is one of these codes (or, by words, holds one)."""
    return _code_matches(text, keys, match).is_not_null()


def _siblings(table: Table, mapping: Mapping) -> list[Table]:
    """The tables reading the same files (SDTM CM: drips, administrations, oxygen)."""
    mine = {f.lower() for f in table.files}
    return [t for t in mapping.tables.values() if {f.lower() for f in t.files} & mine]


def long_form(
    table: Table, frame: pl.DataFrame, mapping: Mapping, name: str, out: Read
) -> tuple[list[tuple[str, CodeMap]], pl.DataFrame]:
    """A code column and a value column: one record, one value."""
    targets = [(code, m) for code, maps in table.codes.items() for m in maps]
    present = [c for c in table.code if c in frame.columns]
    text = pl.coalesce([pl.when(filled(pl.col(c))).then(norm(pl.col(c))) for c in present])
    values = [(i, c) for i, c in enumerate(table.value) if c in frame.columns]
    numeric_sentinels = [float(s) for s in table.sentinels if re.fullmatch(r"[-+]?\d+(?:\.\d+)?", s.strip())]

    def usable(column: str) -> pl.Expr:
        cell = pl.col(column).cast(pl.String).str.strip_chars()
        ok = filled(cell)
        if table.sentinels:
            ok = ok & ~cell.is_in([s.strip() for s in table.sentinels]).fill_null(False)
        if numeric_sentinels:
            ok = ok & ~cell.cast(pl.Float64, strict=False).is_in(numeric_sentinels).fill_null(False)
        return ok

    if values:
        # the first usable value column, and the unit that goes with it
        picked = pl.coalesce([pl.when(usable(c)).then(pl.lit(i)) for i, c in values])
        value = pl.coalesce([pl.when(usable(c)).then(pl.col(c).cast(pl.String).str.strip_chars()) for _, c in values])
        if len(table.unit) > 1:
            unit = pl.lit(None, dtype=pl.String)
            for i, _ in values:
                unit = pl.when(picked == i).then(column_or_blank(frame, table.unit[i])).otherwise(unit)
        else:
            unit = column_or_blank(frame, table.unit[0] if table.unit else None)
    else:
        # an administration's or a procedure's value is the code itself
        value = text
        unit = column_or_blank(frame, table.unit[0] if table.unit else None)
    keys = list(table.codes)
    long = frame.with_columns(_text=text, _value=value, _unit_row=unit, _choice=pl.lit(None, dtype=pl.String))
    # codes are matched once per distinct code text (a few thousand drug names, not millions of rows)
    known = pl.lit(False)
    for t in _siblings(table, mapping):
        # codes no table on this file reads (another LOINC, heart rate): skipped, counted
        known = known | _reads(pl.col("_text"), list(t.codes), t.match)
        known = known | _reads(pl.col("_text"), [" ".join(c.split()).lower() for c in t.ignore], t.match)
    texts = long.select(pl.col("_text").drop_nulls().unique())
    texts = texts.with_columns(_code=_code_matches(pl.col("_text"), keys, table.match), _known=known.fill_null(False))
    long = long.join(texts, on="_text", how="left")
    unread = long.filter(pl.col("_text").is_not_null() & ~pl.col("_known"))
    if table.strict is not None and unread.height:
        # a code of a category the mapping reads (an ICANS score, an oxygen term): an error until mapped
        strict = (
            pl.all_horizontal([condition(column_or_blank(frame, c), alt) for c, alt in table.strict.items()])
            if table.strict
            else pl.lit(True)
        )
        refused = unread.filter(strict)
        unread = unread.filter(~strict)
        column = " or ".join(present)
        for src, value in refused.select("source", pl.coalesce([pl.col(c) for c in present])).head(50).iter_rows():
            out.problems.append(problem(src, "a code this mapping does not know: map it or ignore it", column, value))
        if refused.height > 50:
            out.problems.append(InputProblem(name, f"... and {refused.height - 50} more codes this mapping does not know", 0))
    if unread.height:
        top = unread.group_by("_text").len().sort(["len", "_text"], descending=[True, False]).head(8)
        listed = ", ".join(f"{c} ({n})" for c, n in top.iter_rows())
        out.notes.append(f"{name}: {unread.height} records with codes this mapping does not read were skipped: {listed}")
    return targets, long


def wide_form(
    table: Table, frame: pl.DataFrame, given: list[str], contract: Contract, checkbox_fields: set[str]
) -> tuple[list[tuple[str, CodeMap]], pl.DataFrame]:
    """One column per value: the mapped fields, the columns named as contract
    columns, and the checkbox columns var___k of either."""
    fields = {k.lower(): m for k, m in table.fields.items()}
    by_lower = {c.lower(): c for c in given}
    own = {c.lower() for c in (table.patient, table.key, *table.time, *table.interval) if c}
    if table.contract_fields:
        for lower in by_lower:
            if lower in contract.columns and lower not in IDENTITY and lower not in fields and lower not in own:
                fields[lower] = CodeMap(lower)
    plain = [by_lower[f] for f in fields if f in by_lower]
    # checkbox columns var___k: of a checkbox field of the dictionary, or (without one) of a mapped field
    boxes = {}
    for lower, column in by_lower.items():
        hit = _CHECKBOX.match(lower)
        if not hit:
            continue
        box_field, choice = hit.group(1), hit.group(2)
        if table.contract_fields and box_field in contract.columns and box_field not in IDENTITY:
            fields.setdefault(box_field, CodeMap(box_field))
        if (lower not in fields and box_field not in fields) or (checkbox_fields and box_field not in checkbox_fields):
            continue
        boxes[column] = (lower if lower in fields else box_field, box_field, choice)
    plain = [c for c in plain if c not in boxes]
    read = plain + list(boxes)
    # a value column that a `where` or `from` reads stays beside the values
    wanted = {c for _, m in fields.items() for c in [*m.where, m.from_column] if c}
    kept = [pl.col(c).cast(pl.String).str.strip_chars().alias(f"_keep:{c}") for c in read if c in wanted]
    frame = frame.with_columns(kept) if kept else frame
    index = [c for c in frame.columns if c not in read]
    long = frame.select(*index, *[pl.col(c).cast(pl.String) for c in read]).unpivot(
        on=read, index=index, variable_name="_column", value_name="_value"
    )
    lowered = pl.col("_column").str.to_lowercase()
    code = pl.col("_column").replace_strict({c: t for c, (t, _, _) in boxes.items()}, default=lowered)
    box_field = pl.col("_column").replace_strict({c: f for c, (_, f, _) in boxes.items()}, default=lowered)
    choice = pl.col("_column").replace_strict({c: k for c, (_, _, k) in boxes.items()}, default=None, return_dtype=pl.String)
    long = long.with_columns(
        _code=code,
        _field=box_field,
        _choice=choice,
        _value=pl.col("_value").cast(pl.String).str.strip_chars(),
        _unit_row=pl.lit(None, dtype=pl.String),
        _text=code,
    )
    return list(fields.items()), long
