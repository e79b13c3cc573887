"""Source values as the contract writes them: words through the mapping's maps and
number ranges, then in the contract's spelling ("Awakens to voice" is awakens_to_voice,
Y is yes); numbers parsed ("<5" is 5, the operator kept in the source; "not detected"
is 0); results that state no value skipped. Administrations go on to their actions
(administrations.py)."""

from __future__ import annotations

import re

import polars as pl

from carscore.contract import Contract
from carscore.errors import InputProblem
from carscore.importer.administrations import administration_events
from carscore.importer.cells import bare, fold, norm
from carscore.importer.events import Read
from carscore.importer.mapping_tables import CodeMap, Table
from carscore.importer.rows import problem

# results that state no value (de-identification masks, "unable to report"):
# skipped and counted, never an error (import.md §8)
NO_VALUE = re.compile(r"(?i)^\s*(_+|unable to report|see comment|see note|cancelled|canceled|not reported|pending|\*+)\s*$")
# a number with a comparator ("<5", ">= 1,5"): the number, the comparator kept in the source
BOUND = re.compile(r"^\s*([<>]=?)\s*([-+]?\d+(?:[.,]\d+)?)\s*$")
# MRD and CAR copies below detection are 0 (import.md §3)
NOT_DETECTED = re.compile(r"(?i)^\s*(not detected|undetectable|negative|neg)\s*$")
# how the contract writes its booleans (contract §1)
_YES, _NO = ("yes", "y", "true", "1"), ("no", "n", "false", "0")
SKIP = "\x00skip"  # a source word the mapping maps to no value


def _contract_words(contract: Contract) -> pl.DataFrame:
    """(column, bare word, contract value) for every enum, boolean and dose column."""
    rows = []
    for name, column in contract.columns.items():
        if column.kind == "enum":
            rows += [(name, re.sub(r"[^a-z0-9]", "", v.lower()), v) for v in column.values]
        elif column.kind in ("boolean", "dose"):
            rows += [(name, w, "yes") for w in _YES] + [(name, w, "no") for w in _NO]
    return pl.DataFrame(rows, schema={"column": pl.String, "_bare": pl.String, "_cword": pl.String}, orient="row")


def _ranged(targets: list[tuple[str, CodeMap]], raw: pl.Expr) -> pl.Expr:
    """The value a number takes through the `values` keys "> x", "<= x" ..."""
    number = raw.str.replace(",", ".").cast(pl.Float64, strict=False)
    tests = {">": number.__gt__, ">=": number.__ge__, "<": number.__lt__, "<=": number.__le__, "=": number.__eq__}
    expr = None
    for i, (_, m) in enumerate(targets):
        for op, bound, value in m.ranges:
            cond = (pl.col("_target") == i) & tests[op](bound)
            then = pl.lit(SKIP if value is None else value)
            expr = pl.when(cond).then(then) if expr is None else expr.when(cond).then(then)
    return pl.lit(None, dtype=pl.String) if expr is None else expr.otherwise(pl.lit(None, dtype=pl.String))


def contract_values(
    matched: pl.DataFrame,
    word_map: pl.DataFrame,
    targets: list[tuple[str, CodeMap]],
    table: Table,
    contract: Contract,
    name: str,
    out: Read,
) -> pl.DataFrame:
    """Contract values of the matched records: words through the maps, then as
    the contract writes them; numbers parsed ("<5" is 5, the operator kept in
    the source); actions of drips."""
    administered = table.kind in ("drip", "given")
    word_map = word_map.unique(["_target", "_word"], keep="first", maintain_order=True)
    matched = matched.join(word_map, left_on=["_target", fold(norm(pl.col("_value")))], right_on=["_target", "_word"], how="left")
    matched = matched.with_columns(_mapped=pl.coalesce("_mapped", _ranged(targets, pl.col("_value"))))
    skipped = matched.filter(pl.col("_mapped") == SKIP).height
    matched = matched.filter((pl.col("_mapped") != SKIP).fill_null(True))
    if skipped:
        out.notes.append(f"{name}: {skipped} values the mapping reads as no value were skipped")
    raw = pl.coalesce("_mapped", "_value")
    numeric = pl.lit(not administered) & pl.col("_ckind").is_in(["integer", "number"])
    worded = pl.lit(not administered) & pl.col("_ckind").is_in(["enum", "boolean", "dose"])
    matched = matched.with_columns(_raw=raw, _nothing=raw.str.contains(NO_VALUE.pattern) & pl.lit(not administered))
    nothing = matched.filter(pl.col("_nothing"))
    if nothing.height:
        out.notes.append(f"{name}: {nothing.height} results that state no value were skipped")
    matched = matched.filter(~pl.col("_nothing"))

    # words as the contract writes them: "Awakens to voice" is awakens_to_voice, Y is yes
    matched = matched.with_columns(_bare=bare(pl.col("_raw"))).join(_contract_words(contract), on=["column", "_bare"], how="left")
    dose_number = (pl.col("_ckind") == "dose") & pl.col("_raw").cast(pl.Float64, strict=False).is_not_null()
    unreadable = worded & pl.col("_cword").is_null() & ~dose_number
    bad_words = matched.filter(unreadable)
    off = pl.col("_off_dictionary") if "_off_dictionary" in matched.columns else pl.lit(False)
    for src, column, value, outside in bad_words.select("source", "column", "_value", off.fill_null(False)).head(50).iter_rows():
        said = "is not among the data dictionary's choices for" if outside else "is not a value this mapping knows for"
        out.problems.append(problem(src, f"'{value}' {said} {column}: map it or ignore it", column, value))
    if bad_words.height > 50:
        out.problems.append(InputProblem(name, f"... and {bad_words.height - 50} more values no map knows", 0))
    # an unreadable charting ends the state before it: the state is unknown from then on
    is_state = pl.col("_kind") == "state"
    matched = matched.filter(~unreadable | is_state).with_columns(
        _raw=pl.when(unreadable)
        .then(None)
        .when(worded & pl.col("_cword").is_not_null())
        .then(pl.col("_cword"))
        .otherwise(pl.col("_raw"))
    )

    first = pl.col("_first").fill_null(False)
    text = pl.col("_raw")
    bound = text.str.extract(BOUND.pattern, 2).str.replace(",", ".")
    number_text = (
        pl.when(first)
        .then(text.str.extract(r"([-+]?\d+(?:\.\d+)?)", 1))
        .when(bound.is_not_null())
        .then(bound)
        .when(text.str.contains(NOT_DETECTED.pattern))
        .then(pl.lit("0"))
        .otherwise(text.str.replace(",", "."))
    )
    matched = matched.with_columns(
        number=pl.when(numeric).then(number_text.cast(pl.Float64, strict=False)),
        text=pl.when(~numeric).then(text),
        _bound=pl.when(~first).then(text.str.extract(BOUND.pattern, 1)),
    )
    bad = matched.filter(numeric & (pl.col("number").is_null() | ~pl.col("number").is_finite()))
    for src, column, value in bad.select("source", "column", "_value").head(50).iter_rows():
        out.problems.append(problem(src, f"is not a number for {column}", column, value))
    if bad.height > 50:
        out.problems.append(InputProblem(name, f"... and {bad.height - 50} more values that are not numbers", 0))
    matched = matched.filter(~numeric | (pl.col("number").is_not_null() & pl.col("number").is_finite()))
    matched = matched.with_columns(
        source=pl.when(pl.col("_bound").is_not_null())
        .then(pl.concat_str([pl.col("source"), pl.lit(" ("), pl.col("_bound"), pl.lit(")")]))
        .otherwise(pl.col("source"))
    )
    if not administered:
        return matched.with_columns(kind=pl.col("_kind"))
    return administration_events(matched, table, name, out)
