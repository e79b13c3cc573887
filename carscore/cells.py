"""Reading each cell of the input: its typed value, and a sentence for every
cell that cannot be read (file, row, column and what was written there).

Every cell arrives as text (or as a number the CSV reader could already
parse) and is read column by column by the contract's kind: numbers, whole
numbers, yes/no, doses, enumerations, clock times; numbers outside their
plausible range are named too. Whether a cell is bad is an expression per
column: all of them are counted in one pass over the rows, and a column's
bad cells are picked out only when that count is not zero, which it nearly
never is. A row the CSV reader could not read whole is named once, as such.
"""

from __future__ import annotations

import math

import polars as pl

from carscore.compile import DAY
from carscore.contract import Column, Contract
from carscore.csvread import FILE, LINE, MALFORMED, MALFORMED_COLUMN, MALFORMED_VALUE
from carscore.errors import InputProblem

TRUE_WORDS = ("yes", "y", "true", "1")
FALSE_WORDS = ("no", "n", "false", "0")
_BOOL_WORDS = dict.fromkeys(TRUE_WORDS, True) | dict.fromkeys(FALSE_WORDS, False)

MAX_PROBLEMS_PER_COLUMN = 20
# the columns whose readings hold few distinct texts, each read once
_WORD_KINDS = ("boolean", "dose", "enum")
# up to this many distinct texts in a column, each cell is compared with them
# rather than looked up (measured: comparing is cheaper up to about six)
_FEW_WORDS = 6


def typed_cells(
    raw: pl.DataFrame, contract: Contract, names: list[str], problems: list[InputProblem]
) -> tuple[pl.DataFrame, list[str]]:
    """Every contract column of ``raw`` typed (cells that cannot be read are
    blank), with FILE, LINE, ``_row_bad`` (a cell of the row could not be
    read) and, when the infusion could not be read, the masks that say so; and
    the names of the checks that failed. Each bad cell is named in ``problems``."""
    values: dict[str, pl.Expr] = {}
    masks: dict[str, pl.Expr] = {}
    messages: dict[str, tuple[str, str]] = {}
    distinct = _distinct_words(raw, [c for n, c in contract.columns.items() if n in raw.columns and c.kind in _WORD_KINDS])
    for name, col in contract.columns.items():
        if name not in raw.columns:
            continue
        if col.kind in _WORD_KINDS:
            value, bad, message = _parse_words(col, distinct[name])
        elif col.numeric and raw.schema[name].is_numeric():
            number = pl.col(name).cast(pl.Float64)
            bad, message = ~number.is_finite(), "is not a number"
            if col.kind == "integer":
                bad, message = bad | (number != number.round(0)), "is not a whole number"
            value = number
        else:
            value, bad, message = _parse_column(col, pl.col(name))
        if col.low is not None and col.numeric:
            masks[f"_range_{name}"] = (value.is_not_null() & ((value < col.low) | (value > col.high))).fill_null(False)
            messages[f"_range_{name}"] = (
                name,
                f"is outside the plausible range {_range_text(col)}" + (f": {col.hint}" if col.hint else ""),
            )
        values[name] = value.cast(pl.Int64, strict=False) if col.kind == "integer" else value
        masks[f"_bad_{name}"] = bad.fill_null(False)
        messages[f"_bad_{name}"] = (name, message)
    masks["_blank_day"] = pl.col(DAY).is_null()
    messages["_blank_day"] = (DAY, "day is blank: every row needs its day since infusion")
    if "patient_id" in values:
        masks["_bad_pid"] = values["patient_id"].is_null()
        messages["_bad_pid"] = ("patient_id", "patient_id is blank")
    malformed: list[pl.Expr] = []
    if MALFORMED in raw.columns:
        # a row the CSV reader could not read whole is named once, as such, not
        # cell by cell; its course is not assessed
        whole = pl.col(MALFORMED).is_null()
        masks = {m: mask & whole for m, mask in masks.items()}
        malformed = [~whole]
        _malformed_problems(raw, names, problems)

    # every check counted in one pass; only the cells of those that failed are picked out
    counts = raw.lazy().select([mask.sum().alias(m) for m, mask in masks.items()]).collect(engine="in-memory").row(0, named=True)
    failing = [m for m in masks if counts[m]]
    for m in failing:
        column, message = messages[m]
        src_col = column if column in raw.columns else DAY
        _problems_from(raw, masks[m], src_col, names, column, message, problems)

    row_bad = [masks[m] for m in failing] + malformed
    infusion_masks = [masks[m].alias(m) for m in failing if m in ("_bad_infusion", "_range_infusion")]
    if malformed and "infusion" in values:
        infusion_masks.append((malformed[0] & values["infusion"].is_null()).alias("_malformed_unplaced"))
    typed = raw.lazy().select(
        [FILE, LINE]
        + [value.alias(name) for name, value in values.items()]
        + [(pl.any_horizontal(row_bad) if row_bad else pl.lit(False)).alias("_row_bad")]
        + infusion_masks
    )
    return typed.collect(engine="in-memory"), failing


def _distinct_words(raw: pl.DataFrame, columns: list[Column]) -> dict[str, list[str]]:
    """The distinct texts of each yes/no, dose and enum column, in one pass."""
    if not columns:
        return {}
    found = raw.lazy().select([pl.col(c.name).unique().drop_nulls().implode() for c in columns]).collect(engine="in-memory")
    return {c.name: found[c.name][0].to_list() for c in columns}


def _range_text(col: Column) -> str:
    unit = f" {col.unit}" if col.unit else ""
    return f"{col.low:g} to {col.high:g}{unit}"


def _parse_word(col: Column, word: str) -> tuple[object, bool]:
    """One distinct cell text of a yes/no, dose or enum column: (value, readable)."""
    w = word.strip()
    if not w:
        return None, True
    low = w.lower()
    if col.kind in ("boolean", "dose") and low in _BOOL_WORDS:
        return _BOOL_WORDS[low], True
    if col.kind == "boolean":
        return None, False
    if col.kind == "dose":
        try:
            dose = float(w)
        except ValueError:
            return None, False
        return (dose > 0, True) if math.isfinite(dose) and dose >= 0 else (None, False)
    normal = "_".join(low.replace("-", " ").split())
    return (normal, True) if normal in col.values else (None, False)


_WORD_MESSAGES = {
    "boolean": "is not yes/no (accepted: yes/no, y/n, true/false, 1/0)",
    "dose": "is neither yes/no nor a dose (a number of 0 or more)",
}


def _parse_words(col: Column, words: list[str]) -> tuple[pl.Expr, pl.Expr, str]:
    """Yes/no, dose and enum columns hold few distinct texts: read each once."""
    keys, values, bad = [], [], []
    for word in words:
        value, readable = _parse_word(col, word)
        keys.append(word)
        values.append(value)
        if not readable:
            bad.append(word)
    dtype = pl.Boolean if col.kind in ("boolean", "dose") else pl.String
    if not keys:
        value = pl.lit(None, dtype=dtype)
    elif len(keys) <= _FEW_WORDS:
        # a few texts (yes/no) are told apart by comparing each cell with them,
        # at less than half the cost of looking every cell up in a table
        chain = pl.when(pl.col(col.name) == keys[0]).then(pl.lit(values[0], dtype=dtype))
        for key, v in zip(keys[1:], values[1:]):
            chain = chain.when(pl.col(col.name) == key).then(pl.lit(v, dtype=dtype))
        value = chain.otherwise(pl.lit(None, dtype=dtype))
    else:
        value = pl.col(col.name).replace_strict(keys, values, default=None, return_dtype=dtype)
    message = _WORD_MESSAGES.get(col.kind, f"is not one of: {', '.join(col.values)}")
    return value, pl.col(col.name).is_in(bad) if bad else pl.lit(False), message


def _parse_column(col: Column, raw: pl.Expr) -> tuple[pl.Expr, pl.Expr, str]:
    """Typed value, 'bad cell' mask and the sentence for a bad cell."""
    text = raw.str.strip_chars()
    text = pl.when(text.str.len_chars() == 0).then(None).otherwise(text)
    given = text.is_not_null()
    if col.numeric:
        number = text.cast(pl.Float64, strict=False)
        bad = given & (number.is_null() | ~number.is_finite())
        message = "is not a number"
        if col.kind == "integer":
            bad = bad | (given & number.is_finite() & (number != number.round(0)))
            message = "is not a whole number"
        # integers stay decimal until their range is checked, so that 10^30 is out of range, not blank
        return number, bad, message
    if col.kind == "time":
        return _clock_time(text, given)
    return text, pl.lit(False), ""


_CLOCK = r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$"


def _clock_time(text: pl.Expr, given: pl.Expr) -> tuple[pl.Expr, pl.Expr, str]:
    """HH:MM or HH:MM:SS (24-hour local clock) as seconds since midnight."""
    parts = [text.str.extract(_CLOCK, i).cast(pl.Int64, strict=False) for i in (1, 2, 3)]
    hours, minutes, seconds = parts[0], parts[1], parts[2].fill_null(0)
    valid = (hours < 24) & (minutes < 60) & (seconds < 60)
    value = pl.when(valid).then(hours * 3600 + minutes * 60 + seconds)
    return value, given & value.is_null(), "is not a clock time (HH:MM or HH:MM:SS, 00:00 to 23:59)"


def _as_written(value: object) -> str:
    """A cell as the user wrote it (numbers read by the fast road lose only a '.0')."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _problems_from(
    raw: pl.DataFrame, mask: pl.Expr, column_read: str, names: list[str], column: str, message: str, problems: list[InputProblem]
) -> None:
    """One problem per cell where ``mask`` holds, at most MAX_PROBLEMS_PER_COLUMN
    per file and column, then one line counting the rest of that file's."""
    hits = (
        raw.lazy()
        .filter(mask)
        .select(FILE, LINE, column_read)
        .with_columns(_nth=pl.int_range(pl.len()).over(FILE))
        .collect(engine="in-memory")
    )
    for f, line, value, _ in hits.filter(pl.col("_nth") < MAX_PROBLEMS_PER_COLUMN).iter_rows():
        problems.append(InputProblem(names[f], message, line, column, _as_written(value)))
    more = hits.group_by(FILE).agg(pl.len().alias("n"), pl.col(LINE).max().alias("last"))
    for f, n, last in more.filter(pl.col("n") > MAX_PROBLEMS_PER_COLUMN).iter_rows():
        rest = n - MAX_PROBLEMS_PER_COLUMN
        problems.append(InputProblem(names[f], f"... and {rest} more rows with the same problem", last, column))


def _malformed_problems(raw: pl.DataFrame, names: list[str], problems: list[InputProblem]) -> None:
    """Rows the CSV reader could not read whole, at most MAX_PROBLEMS_PER_COLUMN per file."""
    rows = raw.filter(pl.col(MALFORMED).is_not_null()).with_columns(_nth=pl.int_range(pl.len()).over(FILE))
    shown = rows.filter(pl.col("_nth") < MAX_PROBLEMS_PER_COLUMN)
    for f, line, message, column, value in shown.select(FILE, LINE, MALFORMED, MALFORMED_COLUMN, MALFORMED_VALUE).iter_rows():
        problems.append(InputProblem(names[f], message, line, column or "", value or ""))
    more = rows.group_by(FILE).agg(pl.len().alias("n"), pl.col(LINE).max().alias("last"))
    for f, n, last in more.filter(pl.col("n") > MAX_PROBLEMS_PER_COLUMN).iter_rows():
        problems.append(InputProblem(names[f], f"... and {n - MAX_PROBLEMS_PER_COLUMN} more malformed rows", last))
