"""Several rows of one patient-day become one day (criteria §0).

A row is one assessment. Row values (declared by rule sets) are computed on
each row with that row's own qualifiers, then combined into the day by the
rule they declare; input columns that no row value qualifies are combined
column by column as the contract says (highest temperature, lowest counts).
A day with a single row keeps that row's values unchanged: every combine
below gives back the value of a single row.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from carscore.compile import BOOL, COURSE, DAY
from carscore.contract import Column, Contract

FILE, LINE = "_file", "_line"


@dataclass(frozen=True)
class RowCombine:
    """How one row value's column becomes the day's value."""

    column: str
    combine: str
    of: str | None = None  # the column that picks the row, for row_with_max/row_with_min
    type: str = ""
    values: tuple[str, ...] | None = None  # enum words, least to most severe


def _ranked(c: pl.Expr, values: tuple[str, ...], top: str) -> pl.Expr:
    """max/min of enum words by their order in the contract, not alphabetically."""
    positions = list(range(len(values)))
    rank = c.replace_strict(list(values), positions, default=None, return_dtype=pl.Int32)
    best = rank.max() if top == "max" else rank.min()
    return best.replace_strict(positions, list(values), default=None)


def _some(c: pl.Expr) -> pl.Expr:
    return c.is_not_null().any()


def combine_expr(spec: RowCombine) -> pl.Expr:
    c = pl.col(spec.column)
    how = spec.combine
    if spec.type == BOOL and how in ("max", "min"):
        how = "any" if how == "max" else "all"
    if how in ("max", "min"):
        if spec.values:
            out = _ranked(c, spec.values, how)
        else:
            out = c.max() if how == "max" else c.min()
    elif how == "any":
        # yes on some row; no when recorded and never yes; blank when never recorded
        out = pl.when(_some(c)).then(c.fill_null(False).any())
    elif how == "all":
        out = pl.when(_some(c)).then(c.fill_null(True).all())
    elif how == "first":
        out = c.drop_nulls().first()
    elif how == "last":
        out = c.drop_nulls().last()
    elif how == "sum":
        out = pl.when(_some(c)).then(c.sum())
    else:
        key = pl.col(spec.of)  # type: ignore[arg-type]
        pick = key.max() if how == "row_with_max" else key.min()
        # the value on the row that decides; with no row deciding, the first recorded
        out = pl.when(pick.is_not_null()).then(c.filter(key == pick).first()).otherwise(c.drop_nulls().first())
    return out.alias(spec.column)


def column_merge_expr(col: Column) -> pl.Expr:
    c = pl.col(col.name)
    if col.kind == "enum" and col.merge in ("max", "min"):
        return _ranked(c, col.values, col.merge).alias(col.name)
    if col.merge == "max":
        return c.max().alias(col.name)
    if col.merge == "min":
        return c.min().alias(col.name)
    if col.merge == "join":
        return c.drop_nulls().unique(maintain_order=True).str.join("; ").alias(col.name)
    return c.drop_nulls().first().alias(col.name)


def has_shared_days(rows: pl.DataFrame) -> bool:
    """Whether some course has several rows on one day (rows sorted by course and day)."""
    if rows.height < 2:
        return False
    same_day = (pl.col(COURSE) == pl.col(COURSE).shift(1)) & (pl.col(DAY) == pl.col(DAY).shift(1))
    return bool(rows.select(same_day.any()).item())


def combine_days(lf: pl.LazyFrame, contract: Contract, row_values: list[RowCombine], columns: list[str]) -> pl.LazyFrame:
    """One row per course and day: row values by their combine, the other input
    columns (those in ``columns``) by the contract's merge."""
    aggs = [column_merge_expr(contract.columns[n]) for n in columns if n in contract.columns and n != DAY]
    aggs += [combine_expr(spec) for spec in row_values]
    aggs += [pl.col(FILE).first(), pl.col(LINE).min()]
    return lf.group_by([COURSE, DAY]).agg(aggs).sort([COURSE, DAY])
