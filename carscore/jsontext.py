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
from carscore.engine import Engine
from carscore.report import _with_missing, day_keys, document_tail, reason_keys, rulesets_in_use, summary_keys

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


def _day_texts(a: Assessment) -> pl.DataFrame:
    """Per day, in course order: its course (``_course``) and its JSON object (``_day``)."""
    dk, rk = day_keys(a), reason_keys(a)
    traced = "source" in a.days.columns and a.days["source"].null_count() < a.days.height
    table = _with_missing(a.days, [*dk, *[f"_reason_{k}" for k in rk], "flags"])
    if not table[COURSE].is_sorted():
        table = table.sort(COURSE, maintain_order=True)
    values = [_cleaned(table, k).alias(k) for k in dk]
    values.append(pl.col("flags").fill_null(pl.lit([], dtype=pl.List(pl.String))).alias("flags"))
    values.append(pl.struct([pl.col(f"_reason_{k}").cast(pl.String).alias(k) for k in rk]).alias("reasons"))
    if traced:
        values.append(pl.when(pl.col("source") != "").then(pl.col("source")).alias("source"))
    return _safe(table.select(COURSE, pl.struct(pl.col(DAY).alias("day"), *values).struct.json_encode().alias("_day")), "_day")


def course_entries(a: Assessment, include_days: bool = True) -> pl.DataFrame:
    """The document's ``patients`` as JSON text (``_entry``), in course order
    (``_course``): one row per course, its whole entry (patient_id, infusion,
    file, summary); with ``include_days``, one row per day instead, the day's
    text with its course's opening before its first day and its summary after
    its last, so that a course's rows, joined, are its entry (days, a third of
    a gigabyte at a million, are never gathered per course: document_parts and
    write_entries join them). The chunked reader makes these chunk by chunk,
    side by side."""
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
    opening, closing = pl.col("_head"), pl.concat_str(pl.lit(',"summary":'), pl.col("_summary"), pl.lit("}"))
    if not include_days:
        return table.select(COURSE, pl.concat_str(opening, closing).alias("_entry"))
    days = _day_texts(a)
    course = pl.col(COURSE)
    # a course's opening goes before its first day and its closing after its last
    # (a summary is made from a course's days: every course has days)
    at = days.select(course, pl.int_range(pl.len(), dtype=pl.UInt32).alias("_at"))
    days_open, days_close = pl.concat_str(opening, pl.lit(',"days":[')), pl.concat_str(pl.lit("]"), closing)
    firsts = at.filter(course.is_first_distinct()).join(table, on=COURSE).select("_at", days_open)
    lasts = at.filter(course.is_last_distinct()).join(table, on=COURSE).select("_at", days_close)
    before = _blank(days.height).scatter(firsts["_at"], firsts.to_series(1)).fill_null(",")
    after = _blank(days.height).scatter(lasts["_at"], lasts.to_series(1)).fill_null("")
    return days.select(COURSE, pl.concat_str(before, pl.col("_day"), after).alias("_entry"))


def _blank(height: int) -> pl.Series:
    return pl.repeat(None, height, dtype=pl.String, eager=True)


def _commas(leading: bool) -> pl.Expr:
    """Whether a comma goes before each row of course entries: before each
    course but the first (and before the first too when ``leading``: courses
    were written before it)."""
    starts = pl.col(COURSE).is_first_distinct()
    return starts if leading else starts & (pl.int_range(pl.len()) > 0)


def _with_commas(commas: pl.Expr | pl.Series) -> pl.Expr:
    return pl.concat_str(pl.when(commas).then(pl.lit(",")).otherwise(pl.lit("")), pl.col("_entry"))


def document_bytes(a: Assessment, include_days: bool, cohort: dict | None = None, entries: pl.DataFrame | None = None) -> bytes:
    """The document as compact UTF-8 JSON (``document_parts`` joined)."""
    return b"".join(document_parts(a, include_days, cohort, entries))


# the document is handed out in parts of about this many bytes of courses
PART_BYTES = 16 << 20


def document_parts(
    a: Assessment,
    include_days: bool,
    cohort: dict | None = None,
    entries: pl.DataFrame | None = None,
    rows_a_part: int | None = None,
) -> Iterator[bytes]:
    """The document as compact UTF-8 JSON, in parts of about PART_BYTES (or of
    ``rows_a_part`` rows of ``course_entries``), written one after the other:
    the whole text is never held. ``entries``: those already made (as the
    chunked reader gathers them, in course order), else they are made here."""
    entries = entries if entries is not None else course_entries(a, include_days)
    commas = entries.select(_commas(leading=False)).to_series()
    if rows_a_part is None:
        size = entries.select(pl.col("_entry").str.len_bytes().sum()).item() or 0
        rows_a_part = max(1, entries.height * PART_BYTES // max(size, 1))
    yield document_head(a.engine)
    for start in range(0, entries.height, rows_a_part):
        part = entries.slice(start, rows_a_part)
        text = part.select(_with_commas(commas.slice(start, rows_a_part)).str.join("").cast(pl.Binary)).item()
        # taken as UTF-8 bytes straight from polars: made into a Python str first, the
        # text of a million days (not all ASCII) would be copied and widened twice over
        yield text
    yield document_end(a, cohort)


def document_head(engine: Engine) -> bytes:
    """The document up to its first course: known before anything is graded."""
    return (_text({"carscore": __version__, "rulesets": rulesets_in_use(engine)})[:-1] + ', "patients": [').encode()


def write_entries(stream: Any, entries: pl.DataFrame, leading: bool = False) -> None:
    """Course entries (``course_entries``, whole courses) written to a binary
    stream as the document lists them, by polars, row after row, never joined
    into one text first; ``leading``: after other courses (a comma first)."""
    # each row's text as it is: no quotes, no separator, no line end
    text = _with_commas(_commas(leading))
    entries.select(text).write_csv(stream, include_header=False, quote_style="never", line_terminator="")


def document_end(a: Assessment, cohort: dict | None = None) -> bytes:
    """The document after its last course: the cohort, the problems and notes."""
    return ("], " + _text(document_tail(a, cohort))[1:] + "\n").encode()


def _text(value: Any) -> str:
    import re

    text = json.dumps(value, ensure_ascii=False, default=str)
    return re.sub(JSON_UNSAFE, lambda m: f"\\u{ord(m.group(0)):04x}", text)
