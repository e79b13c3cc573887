"""Infusion dates per course (outputs.md "Dates"): the local calendar date of
``infusion_datetime`` in the infusions file (contract §4), read by the
importer's own reader so that an export and an import date a course alike.

A course without a readable, unambiguous date gets a blank date and a
warning naming it; a wrong date is never given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from carscore.assess import Assessment
from carscore.compile import COURSE
from carscore.errors import InputProblem


@dataclass
class CourseDates:
    table: pl.DataFrame  # _course, infusion_date (Date, null when unknown)
    problems: list[InputProblem] = field(default_factory=list)  # bad rows of the infusions file
    warnings: list[str] = field(default_factory=list)  # courses left without a date


def courses_of(assessment: Assessment) -> pl.DataFrame:
    """The assessed courses: _course, patient_id, infusion, file (input order)."""
    assessed = assessment.summaries.select(COURSE)
    return assessment.intake.courses.join(assessed, on=COURSE, how="semi").sort(COURSE)


def no_dates(assessment: Assessment) -> CourseDates:
    courses = courses_of(assessment)
    return CourseDates(courses.select(COURSE, pl.lit(None, dtype=pl.Date).alias("infusion_date")))


def course_dates(
    assessment: Assessment, infusions: str | Path, timezone: str | None = None, already_read: bool = False
) -> CourseDates:
    """Each assessed course's infusion date from the infusions file.
    ``already_read``: the file was read by an import (--from), which has named its problems."""
    from carscore.importer.clock import Zone
    from carscore.importer.infusions import read_infusions

    name = str(infusions)
    read = read_infusions(name, Zone(timezone) if timezone else None)
    problems = [] if already_read else list(read.problems)
    # a course listed twice has two candidate dates: which one is right is not known
    twice = {(p.value, p.message) for p in read.problems if p.column == "infusion" and p.row == 0}
    ambiguous = _listed_twice(read.table, twice)
    dated = read.table.select("patient_id", pl.col("infusion").cast(pl.Int64), pl.col("local_date").alias("infusion_date"))
    courses = courses_of(assessment).with_columns(pl.col("infusion").cast(pl.Int64))
    joined = courses.join(dated, on=["patient_id", "infusion"], how="left").sort(COURSE)
    warnings: list[str] = []
    for pid, inf, when in joined.select("patient_id", "infusion", "infusion_date").iter_rows():
        if (pid, inf) in ambiguous:
            warnings.append(f"patient {pid} infusion {inf} is listed twice in {name}: its dates are left blank")
        elif when is None:
            warnings.append(f"patient {pid} infusion {inf} has no readable row in {name}: its dates are left blank")
    if ambiguous:
        keys = pl.DataFrame(list(ambiguous), schema={"patient_id": pl.String, "infusion": pl.Int64}, orient="row")
        blank = joined.join(keys, on=["patient_id", "infusion"], how="semi")[COURSE]
        joined = joined.with_columns(
            pl.when(pl.col(COURSE).is_in(blank.implode())).then(None).otherwise(pl.col("infusion_date")).alias("infusion_date")
        )
    return CourseDates(joined.select(COURSE, "infusion_date"), problems, warnings)


def _listed_twice(table: pl.DataFrame, twice: set[tuple[str, str]]) -> set[tuple[str, int]]:
    """The (patient, infusion) keys the reader found twice (it keeps the first row of each)."""
    keys = set()
    for pid, inf in table.select("patient_id", "infusion").iter_rows():
        if (str(inf), f"patient {pid} infusion {inf} is listed twice") in twice:
            keys.add((pid, int(inf)))
    return keys
