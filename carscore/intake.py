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

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from carscore.cells import MAX_PROBLEMS_PER_COLUMN, typed_cells
from carscore.combine import column_merge_expr
from carscore.compile import COURSE, DAY, Compiler
from carscore.contract import Check, Column, Contract, load_contract
from carscore.csvread import FILE, LINE, read_frames
from carscore.engine import in_course_order
from carscore.errors import InputProblem
from carscore.expr import names_in
from carscore.plan import column_symbol
from carscore.sources import Source, sources_from_paths


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

    # every cell read by its column's kind; the cells that cannot be read are named
    typed_df, failing = typed_cells(raw, contract, names, problems)
    del raw
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
