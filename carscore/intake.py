"""Reading patient data: wide CSV files (contract section 1) into one typed
table of input rows (one row per assessment), with every problem named by
file, row and column. The rows of a day are combined later, by the engine,
after each row's own values are read (criteria §0).

Every cell is read as text first and parsed column by column, so a bad cell
is reported with what was written there instead of being silently dropped.
A course (one patient, one infusion) with any bad cell is not assessed; the
other courses in the same file and in other files still are.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from carscore.combine import column_merge_expr
from carscore.compile import COURSE, DAY, Compiler
from carscore.contract import Check, Column, Contract, load_contract
from carscore.csvread import FILE, LINE, MALFORMED, MALFORMED_COLUMN, MALFORMED_VALUE, read_frames
from carscore.engine import in_course_order
from carscore.errors import InputProblem
from carscore.expr import names_in
from carscore.plan import column_symbol
from carscore.sources import Source, sources_from_paths

TRUE_WORDS = ("yes", "y", "true", "1")
FALSE_WORDS = ("no", "n", "false", "0")
_BOOL_WORDS = dict.fromkeys(TRUE_WORDS, True) | dict.fromkeys(FALSE_WORDS, False)

MAX_PROBLEMS_PER_COLUMN = 20


@dataclass
class Intake:
    rows: pl.DataFrame  # one row per assessment, typed, sorted by course, day and time
    courses: pl.DataFrame  # _course, patient_id, infusion, file (input order)
    problems: list[InputProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files_read: int = 0
    # the input columns each file has (by _file index): a blank cell in a file
    # that has the column is "not recorded that day"; a missing column is not captured
    file_columns: list[frozenset[str]] = field(default_factory=list)
    # the last of ``problems``: the courses left out because of the problems before them
    left_out: list[InputProblem] = field(default_factory=list)
    # the notes of the files read, as (file, message) before they were grouped by message
    note_pairs: list[tuple[str, str]] = field(default_factory=list)


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


def _parse_words(col: Column, raw: pl.Series) -> tuple[pl.Expr, pl.Expr, str]:
    """Yes/no, dose and enum columns hold few distinct texts: read each once."""
    keys, values, bad = [], [], []
    for word in raw.unique().drop_nulls().to_list():
        value, readable = _parse_word(col, word)
        keys.append(word)
        values.append(value)
        if not readable:
            bad.append(word)
    dtype = pl.Boolean if col.kind in ("boolean", "dose") else pl.String
    value = pl.col(col.name).replace_strict(keys, values, default=None, return_dtype=dtype) if keys else pl.lit(None, dtype=dtype)
    message = _WORD_MESSAGES.get(col.kind, f"is not one of: {', '.join(col.values)}")
    return value, pl.col(col.name).is_in(bad), message


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
    df: pl.DataFrame, mask: str, raw: str, names: list[str], column: str, message: str, problems: list[InputProblem]
) -> None:
    """One problem per cell, at most MAX_PROBLEMS_PER_COLUMN per file and column,
    then one line counting the rest of that file's."""
    hits = df.filter(pl.col(mask)).select(FILE, LINE, raw).with_columns(_nth=pl.int_range(pl.len()).over(FILE))
    for f, line, value, _ in hits.filter(pl.col("_nth") < MAX_PROBLEMS_PER_COLUMN).iter_rows():
        problems.append(InputProblem(names[f], message, line, column, _as_written(value)))
    more = hits.group_by(FILE).agg(pl.len().alias("n"), pl.col(LINE).max().alias("last"))
    for f, n, last in more.filter(pl.col("n") > MAX_PROBLEMS_PER_COLUMN).iter_rows():
        rest = n - MAX_PROBLEMS_PER_COLUMN
        problems.append(InputProblem(names[f], f"... and {rest} more rows with the same problem", last, column))


def read_sources(
    sources: list[Source],
    contract: Contract | None = None,
    on_file: Callable[[], None] | None = None,
    *,
    column_map: dict[str, str] | None = None,
    ignore_unknown: bool = False,
) -> Intake:
    contract = contract or load_contract()
    note_pairs: list[tuple[str, str]] = []
    frames, problems, notes = read_frames(
        sources, contract, on_file, column_map=column_map, ignore_unknown=ignore_unknown, note_pairs=note_pairs
    )
    names = [s.name for s in sources]
    file_columns = [frozenset[str]() for _ in sources]
    for frame in frames:
        present = frozenset(c for c in frame.columns if c in contract.columns)
        for i in frame[FILE].unique().to_list():
            file_columns[i] = present
    if not frames:
        return Intake(_empty_rows(contract), _empty_courses(), problems, notes, len(sources), file_columns, note_pairs=note_pairs)
    raw = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    frames.clear()

    # parse every column: typed value plus a mask of cells that could not be read
    typed, masks, messages = [], [], {}
    for name, col in contract.columns.items():
        if name not in raw.columns:
            continue
        if col.kind in ("boolean", "dose", "enum"):
            value, bad, message = _parse_words(col, raw[name])
        elif col.numeric and raw.schema[name].is_numeric():
            number = pl.col(name).cast(pl.Float64)
            bad, message = ~number.is_finite(), "is not a number"
            if col.kind == "integer":
                bad, message = bad | (number != number.round(0)), "is not a whole number"
            value = number
        else:
            value, bad, message = _parse_column(col, pl.col(name))
        if col.low is not None and col.numeric:
            out_of_range = value.is_not_null() & ((value < col.low) | (value > col.high))
            masks.append(out_of_range.fill_null(False).alias(f"_range_{name}"))
            messages[f"_range_{name}"] = (
                name,
                f"is outside the plausible range {_range_text(col)}" + (f": {col.hint}" if col.hint else ""),
            )
        typed.append(value.alias(f"_v_{name}"))
        masks.append(bad.fill_null(False).alias(f"_bad_{name}"))
        messages[f"_bad_{name}"] = (name, message)
    parsed = raw.with_columns(typed).with_columns(masks)
    integers = [f"_v_{n}" for n, c in contract.columns.items() if c.kind == "integer" and f"_v_{n}" in parsed.columns]
    parsed = parsed.with_columns([pl.col(n).cast(pl.Int64, strict=False) for n in integers])
    parsed = parsed.with_columns(_blank_day=pl.col(DAY).is_null())
    messages["_blank_day"] = (DAY, "day is blank: every row needs its day since infusion")
    if "patient_id" in raw.columns:
        parsed = parsed.with_columns(_bad_pid=pl.col("_v_patient_id").is_null())
        messages["_bad_pid"] = ("patient_id", "patient_id is blank")
    if MALFORMED in parsed.columns:
        # a row the CSV reader could not read whole is named once, as such, not
        # cell by cell; its course is not assessed
        whole = pl.col(MALFORMED).is_null()
        parsed = parsed.with_columns([(pl.col(m) & whole).alias(m) for m in messages]).with_columns(_malformed_row=~whole)
        _malformed_problems(parsed, names, problems)

    counts = parsed.select([pl.col(m).sum() for m in messages]).row(0, named=True)
    failing = [m for m in messages if counts[m]]
    for m in failing:
        column, message = messages[m]
        src_col = column if column in raw.columns else DAY
        _problems_from(parsed, m, src_col, names, column, message, problems)

    # typed table; cells that failed are blank from here on (their course is dropped below)
    del raw
    typed_df = parsed.select(
        [FILE, LINE]
        + [pl.col(f"_v_{n}").alias(n) for n in contract.columns if f"_v_{n}" in parsed.columns]
        + [pl.any_horizontal([pl.col(m) for m in failing] + _malformed_mask(parsed)).alias("_row_bad")]
        + [pl.col(m) for m in failing if m in ("_bad_infusion", "_range_infusion")]
        + (
            [(pl.col("_malformed_row") & pl.col("_v_infusion").is_null()).alias("_malformed_unplaced")]
            if MALFORMED in parsed.columns and "_v_infusion" in parsed.columns
            else []
        )
    )
    del parsed
    for name, col in contract.columns.items():
        if name not in typed_df.columns:
            typed_df = typed_df.with_columns(pl.lit(None, dtype=_dtype(col)).alias(name))
    # a row whose infusion cannot be read belongs to no known course: it is kept
    # out of every course, and the patient's courses in that file are not assessed
    bad_infusion = [pl.col(m) for m in failing if m in ("_bad_infusion", "_range_infusion")]
    bad_infusion += [pl.col("_malformed_unplaced")] if "_malformed_unplaced" in typed_df.columns else []
    unplaced = pl.any_horizontal(bad_infusion) if bad_infusion else pl.lit(False)
    typed_df = typed_df.with_columns(
        pl.when(unplaced).then(None).otherwise(pl.col("infusion").fill_null(1)).alias("infusion"), _unplaced=unplaced
    )

    # cross-column checks of one assessment (ICE items against that row's ICE total)
    typed_df = _check(typed_df, [c for c in contract.checks if c.level == "row"], contract, names, problems)

    courses, typed_df, dup_problems = _assign_courses(typed_df, names)
    problems.extend(dup_problems)
    unplaced_patients = typed_df.filter(pl.col("_unplaced")).select(FILE, "patient_id").unique()
    if unplaced_patients.height:
        hit = pl.struct(FILE, "patient_id").is_in(unplaced_patients.to_struct().implode())
        typed_df = typed_df.with_columns(pl.col("_row_bad") | hit)
    typed_df = typed_df.filter(pl.col(COURSE).is_not_null()).drop(
        "_unplaced", "_bad_infusion", "_range_infusion", "_malformed_unplaced", strict=False
    )
    day_checks = [c for c in contract.checks if c.level == "day"]
    if day_checks:
        # checks of the whole day, on its rows combined (a CSF count and a
        # cytospin on two rows are one examination)
        merged = typed_df.group_by([COURSE, DAY]).agg(
            [column_merge_expr(contract.columns[n]) for n in _check_columns(day_checks, contract)]
            + [pl.col(FILE).first(), pl.col(LINE).min(), pl.col("_row_bad").any()]
        )
        merged = _check(merged, day_checks, contract, names, problems)
        bad_days = merged.filter(pl.col("_row_bad")).select(COURSE).unique()
        typed_df = typed_df.with_columns(pl.col("_row_bad") | pl.col(COURSE).is_in(bad_days[COURSE].implode()))
    bad_courses = typed_df.filter(pl.col("_row_bad")).select(COURSE).unique()
    left_out: list[InputProblem] = []
    if bad_courses.height:
        typed_df = typed_df.join(bad_courses, on=COURSE, how="anti")
        courses = courses.with_columns(assessed=~pl.col(COURSE).is_in(bad_courses[COURSE].implode()))
        left_out = _not_assessed(courses)
    rows = _course_ages(typed_df.drop("_row_bad"))
    order = {n: i for i, n in enumerate(names)}
    problems.sort(key=lambda p: (order.get(p.file, -1), p.row))
    problems.extend(left_out)
    return Intake(rows, courses, problems, notes, len(sources), file_columns, left_out, note_pairs)


def _malformed_mask(parsed: pl.DataFrame) -> list[pl.Expr]:
    return [pl.col("_malformed_row")] if "_malformed_row" in parsed.columns else []


def _malformed_problems(parsed: pl.DataFrame, names: list[str], problems: list[InputProblem]) -> None:
    """Rows the CSV reader could not read whole, at most MAX_PROBLEMS_PER_COLUMN per file."""
    rows = parsed.filter(pl.col("_malformed_row")).with_columns(_nth=pl.int_range(pl.len()).over(FILE))
    shown = rows.filter(pl.col("_nth") < MAX_PROBLEMS_PER_COLUMN)
    for f, line, message, column, value in shown.select(FILE, LINE, MALFORMED, MALFORMED_COLUMN, MALFORMED_VALUE).iter_rows():
        problems.append(InputProblem(names[f], message, line, column or "", value or ""))
    more = rows.group_by(FILE).agg(pl.len().alias("n"), pl.col(LINE).max().alias("last"))
    for f, n, last in more.filter(pl.col("n") > MAX_PROBLEMS_PER_COLUMN).iter_rows():
        problems.append(InputProblem(names[f], f"... and {n - MAX_PROBLEMS_PER_COLUMN} more malformed rows", last))


def _not_assessed(courses: pl.DataFrame) -> list[InputProblem]:
    """Every course left out, named: one sentence per file, however many."""
    out = []
    left_out = courses.filter(~pl.col("assessed"))
    for (file,), group in left_out.group_by("file", maintain_order=True):
        named = ", ".join(f"{pid} (infusion {inf})" for pid, inf in group.select("patient_id", "infusion").iter_rows())
        n = group.height
        out.append(
            InputProblem(str(file), f"{n} course{'s' if n > 1 else ''} not assessed because of the problems above: {named}")
        )
    return out


def _check_columns(checks: list[Check], contract: Contract) -> list[str]:
    names: set[str] = set()
    for check in checks:
        names |= names_in(check.when) & set(contract.columns)
    return sorted(names - {DAY, "patient_id", "infusion"})


def _check(
    df: pl.DataFrame, checks: list[Check], contract: Contract, names: list[str], problems: list[InputProblem]
) -> pl.DataFrame:
    """Mark rows (or days) where a check finds the input wrong, naming each."""
    if not checks:
        return df
    compiler = Compiler(lambda n: column_symbol(contract, n))
    masks = [compiler.compile(check.when).expr.fill_null(False).alias(f"_check_{i}") for i, check in enumerate(checks)]
    df = df.with_columns(masks)
    for i, check in enumerate(checks):
        hits = df.filter(pl.col(f"_check_{i}"))
        for row in hits.head(MAX_PROBLEMS_PER_COLUMN).iter_rows(named=True):
            values = ", ".join(f"{c}={_show(row[c])}" for c in check.columns)
            problems.append(
                InputProblem(
                    names[row[FILE]],
                    f"{check.message} ({values})",
                    row[LINE],
                    " and ".join(check.columns[:2]) if len(check.columns) <= 2 else check.columns[0],
                )
            )
    flagged = pl.any_horizontal([pl.col("_row_bad")] + [pl.col(f"_check_{i}") for i in range(len(checks))])
    return df.with_columns(flagged.alias("_row_bad")).drop([f"_check_{i}" for i in range(len(checks))])


def _show(v: object) -> str:
    return "blank" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))


def _dtype(col: Column) -> pl.DataType:
    return {
        "integer": pl.Int64(),
        "number": pl.Float64(),
        "boolean": pl.Boolean(),
        "dose": pl.Boolean(),
        "time": pl.Int64(),
    }.get(col.kind, pl.String())


def _assign_courses(df: pl.DataFrame, names: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, list[InputProblem]]:
    """Number courses (patient_id, infusion) in input order. A course found in
    two files is an error: its rows in the later file are not assessed."""
    problems: list[InputProblem] = []
    keyed = df.filter(pl.col("patient_id").is_not_null() & pl.col("infusion").is_not_null())
    first_seen = (
        keyed.group_by(["patient_id", "infusion", FILE], maintain_order=True)
        .agg(pl.col(LINE).min().alias("_first_line"))
        .sort([FILE, "_first_line"])
    )
    owners = first_seen.unique(subset=["patient_id", "infusion"], keep="first", maintain_order=True)
    clashes = first_seen.join(owners, on=["patient_id", "infusion"], suffix="_owner").filter(
        pl.col(FILE) != pl.col(f"{FILE}_owner")
    )
    for row in clashes.iter_rows(named=True):
        problems.append(
            InputProblem(
                names[row[FILE]],
                f"patient {row['patient_id']} infusion {row['infusion']} is already in {names[row[FILE + '_owner']]}; "
                "these rows are not assessed (give each course one file, or distinct patient_id)",
                row["_first_line"],
                "patient_id",
                str(row["patient_id"]),
            )
        )
    owners = owners.with_row_index(COURSE).with_columns(pl.col(COURSE).cast(pl.UInt32))
    df = df.join(owners.select(COURSE, "patient_id", "infusion", FILE), on=["patient_id", "infusion", FILE], how="left")
    courses = owners.select(
        COURSE,
        "patient_id",
        "infusion",
        pl.col(FILE).map_elements(lambda i: names[i], return_dtype=pl.String).alias("file"),
        pl.col(FILE).alias("_file_index"),
        "_first_line",
    ).with_columns(assessed=pl.lit(True))
    return courses, df, problems


def _course_ages(df: pl.DataFrame) -> pl.DataFrame:
    """Age is written once per patient (contract §1): give every row of a course
    the course's own age, else the age given in another of the patient's
    courses; then order the rows by course, day and clock time."""
    course_age = pl.col("age_years").drop_nulls().first().over(COURSE)
    patient_age = pl.col("age_years").drop_nulls().first().over("patient_id")
    df = df.with_columns(pl.coalesce(course_age, patient_age).alias("age_years"))
    order = [COURSE, DAY, "time"]
    return df if in_course_order(df, order) else df.sort(order, nulls_last=False, maintain_order=True)


def _empty_rows(contract: Contract) -> pl.DataFrame:
    schema = {COURSE: pl.UInt32(), FILE: pl.UInt32(), LINE: pl.UInt32()}
    schema |= {n: _dtype(c) for n, c in contract.columns.items()}
    return pl.DataFrame(schema=schema)


def _empty_courses() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            COURSE: pl.UInt32(),
            "patient_id": pl.String(),
            "infusion": pl.Int64(),
            "file": pl.String(),
            "_file_index": pl.UInt32(),
            "_first_line": pl.UInt32(),
            "assessed": pl.Boolean(),
        }
    )


def read_paths(
    paths: list[str],
    contract: Contract | None = None,
    stdin: bytes | None = None,
    *,
    column_map: dict[str, str] | None = None,
    ignore_unknown: bool = False,
) -> Intake:
    notes: list[str] = []
    sources, problems = sources_from_paths(paths, stdin, notes=notes)
    intake = read_sources(sources, contract, column_map=column_map, ignore_unknown=ignore_unknown)
    intake.problems[:0] = problems
    intake.notes[:0] = notes
    return intake


def read_text(text: str, name: str = "input.csv", contract: Contract | None = None) -> Intake:
    return read_sources([Source(name, text.encode())], contract)
