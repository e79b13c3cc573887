"""The JSON document (contract §2) as compact text, encoded by polars: a
million days in seconds, where building a mapping per day in Python and
encoding it takes tens. The values are those of ``report.build_document``
(tests hold the two equal); only the spacing differs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import polars as pl

from carscore import __version__
from carscore.assess import Assessment
from carscore.compile import COURSE, DAY
from carscore.report import _with_missing, day_keys, document_tail, reason_keys, ruleset_info, summary_keys

# JSON escapes C0 controls itself; these are written as \uXXXX too (the same
# value for every JSON reader), so that a terminal never receives them raw:
# C1 controls, zero-width and direction marks, line and paragraph separators
JSON_UNSAFE = r"[\x7f-\x9f\u200b\u200e\u200f\u2028-\u202e\u2060-\u2069\ufeff]"
_UNSAFE_CHARACTERS = [
    chr(c) for c in [*range(0x7F, 0xA0), 0x200B, 0x200E, 0x200F, *range(0x2028, 0x202F), *range(0x2060, 0x206A), 0xFEFF]
]


def _safe(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """Every unsafe character of a text column written as its \\uXXXX escape; the
    column is searched once, and rewritten only when it holds one (it rarely does)."""
    text = pl.col(name)
    # every unsafe character but DEL is outside ASCII: the search is only on the
    # texts that are not plain ASCII, or hold a DEL (a fifth of the days)
    suspect = (text.str.len_bytes() != text.str.len_chars()) | text.str.contains("\x7f", literal=True)
    if not frame.lazy().filter(suspect).select(text.str.contains(JSON_UNSAFE).any()).collect().item():
        return frame
    escaped = text
    for character in _UNSAFE_CHARACTERS:
        escaped = escaped.str.replace_all(character, f"\\u{ord(character):04x}", literal=True)
    return frame.with_columns(escaped.alias(name))


def _cleaned(table: pl.DataFrame, name: str) -> pl.Expr:
    """As report._clean: a number that is not finite is null; a column of whole numbers is written as whole."""
    col, dtype = pl.col(name), table.schema[name]
    if not dtype.is_float():
        return col
    finite = pl.when(col.is_finite()).then(col)
    whole = table.select((col.is_null() | ~col.is_finite() | ((col == col.round(0)) & (col.abs() < 2**53))).all()).item()
    return finite.cast(pl.Int64) if whole else finite


def _days_text(a: Assessment) -> pl.DataFrame:
    """Per course (``_course``), its days as the text of one JSON array (``_days``)."""
    dk, rk = day_keys(a), reason_keys(a)
    traced = "source" in a.days.columns and a.days["source"].null_count() < a.days.height
    table = _with_missing(a.days, [*dk, *[f"_reason_{k}" for k in rk], "flags"])
    values = [_cleaned(table, k).alias(k) for k in dk]
    values.append(pl.col("flags").fill_null(pl.lit([], dtype=pl.List(pl.String))).alias("flags"))
    values.append(pl.struct([pl.col(f"_reason_{k}").cast(pl.String).alias(k) for k in rk]).alias("reasons"))
    if traced:
        values.append(pl.when(pl.col("source") != "").then(pl.col("source")).alias("source"))
    encoded = _safe(table.select(COURSE, pl.struct(pl.col(DAY).alias("day"), *values).struct.json_encode().alias("_day")), "_day")
    grouped = encoded.group_by(COURSE, maintain_order=True).agg(pl.col("_day").str.join(","))
    return grouped.select(COURSE, pl.concat_str(pl.lit("["), pl.col("_day"), pl.lit("]")).alias("_days"))


def course_entries(a: Assessment, include_days: bool = True) -> pl.DataFrame:
    """Per course (``_course``), its whole entry of the document's ``patients``
    as JSON text (``_entry``): patient_id, infusion, file, days and summary.
    The chunked reader makes these chunk by chunk, side by side."""
    keys = summary_keys(a)
    table = (
        _with_missing(a.summaries, keys)
        .join(a.intake.courses.select(COURSE, "patient_id", "infusion", "file"), on=COURSE, how="left")
        .sort(COURSE)
    )
    table = table.select(
        COURSE,
        pl.struct("patient_id", "infusion", "file").struct.json_encode().str.strip_suffix("}").alias("_head"),
        pl.struct([_cleaned(table, k).alias(k) for k in keys]).struct.json_encode().alias("_summary"),
    )
    table = _safe(_safe(table, "_head"), "_summary")
    parts = [pl.col("_head")]
    if include_days:
        table = table.join(_days_text(a), on=COURSE, how="left")
        parts += [pl.lit(',"days":'), pl.col("_days").fill_null("[]")]
    entry = pl.concat_str([*parts, pl.lit(',"summary":'), pl.col("_summary"), pl.lit("}")])
    return table.select(COURSE, entry.alias("_entry"))


def document_bytes(a: Assessment, include_days: bool, cohort: dict | None = None, entries: pl.DataFrame | None = None) -> bytes:
    """The document as compact UTF-8 JSON (``document_parts`` joined)."""
    return b"".join(document_parts(a, include_days, cohort, entries))


def document_parts(
    a: Assessment,
    include_days: bool,
    cohort: dict | None = None,
    entries: pl.DataFrame | None = None,
    courses_a_part: int = 5000,
) -> Iterator[bytes]:
    """The document as compact UTF-8 JSON, in parts of ``courses_a_part``
    courses (written one after the other, the whole text is never held);
    ``entries``: the courses' entries already made (``course_entries``, as the
    chunked reader gathers them, in course order), else they are made here."""
    entries = entries if entries is not None else course_entries(a, include_days)
    yield (_text({"carscore": __version__, "rulesets": ruleset_info(a)})[:-1] + ', "patients": [').encode()
    for start in range(0, entries.height, courses_a_part):
        # taken as UTF-8 bytes straight from polars: made into a Python str first, the
        # text of a million days (not all ASCII) would be copied and widened twice over
        text = entries.slice(start, courses_a_part).select(pl.col("_entry").str.join(",").cast(pl.Binary)).item()
        yield (b", " if start else b"")
        yield text
    yield ("], " + _text(document_tail(a, cohort))[1:] + "\n").encode()


def _text(value: Any) -> str:
    import re

    text = json.dumps(value, ensure_ascii=False, default=str)
    return re.sub(JSON_UNSAFE, lambda m: f"\\u{ord(m.group(0)):04x}", text)
