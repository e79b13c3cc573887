"""Cells as the table readers compare them: trimmed and lower case, filled or blank,
folded for codes, and tested against a `where` condition. Each is a polars expression
over a whole column."""

from __future__ import annotations

import re

import polars as pl

from carscore.importer.mapping_tables import BLANK


def norm(e: pl.Expr) -> pl.Expr:
    """A cell as codes and words are compared: trimmed, lower case, inner spaces single."""
    return e.cast(pl.String).str.strip_chars().str.to_lowercase().str.replace_all(r"\s+", " ")


def filled(e: pl.Expr) -> pl.Expr:
    """Whether a cell holds more than spaces."""
    return e.is_not_null() & (e.cast(pl.String).str.strip_chars() != "")


def bare(e: pl.Expr) -> pl.Expr:
    """A word as the contract compares enum words: letters and digits only."""
    return e.str.to_lowercase().str.replace(r"\.0+$", "").str.replace_all(r"[^a-z0-9]", "")


def condition(cell: pl.Expr, alternatives: tuple[str, ...]) -> pl.Expr:
    """Whether a cell meets a `where` condition (mapping.py: words, (blank), ~words, !)."""
    cell = norm(cell)
    blank = cell.is_null() | (cell == "")

    def test(alternative: str) -> pl.Expr:
        if alternative == BLANK:
            return blank
        if alternative.startswith("~"):
            return cell.str.contains(rf"\b{re.escape(alternative[1:].strip())}\b").fill_null(False)
        return (cell == alternative).fill_null(False)

    wanted = [test(a) for a in alternatives if not a.startswith("!")]
    refused = [test(a[1:]) for a in alternatives if a.startswith("!")]
    held = pl.any_horizontal(wanted) if wanted else pl.lit(True)
    return held & ~pl.any_horizontal(refused) if refused else held


def column_or_blank(frame: pl.DataFrame, name: str | None) -> pl.Expr:
    """A source column as text; blank when the table lacks it. A wide table's
    value column read by a `where` or `from` is kept beside the values as _keep:<name>."""
    if name and f"_keep:{name}" in frame.columns:
        return pl.col(f"_keep:{name}")
    if name and name in frame.columns:
        return pl.col(name).cast(pl.String).str.strip_chars()
    return pl.lit(None, dtype=pl.String)


def fold(e: pl.Expr) -> pl.Expr:
    """A code as exact matching compares it: spaces, hyphens and underscores alike
    (CLIF "ICE Score" is ice_score; SDTM "NON-REBREATHER MASK")."""
    return e.str.replace_all(r"[\s\-_]+", "_")
