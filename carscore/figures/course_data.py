"""A course's series, summary values and rule parameters, pulled from an Assessment for the figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from carscore.assess import Assessment
from carscore.compile import COURSE, DAY
from carscore.rulemodel import Parameter


@dataclass(frozen=True)
class Course:
    """One course's days as arrays: drawing reads plain numpy, never a data frame (a frame
    operation on a few rows starts polars' thread pool, costing more than the figure)."""

    id: int
    patient_id: str
    infusion: int | None
    day: np.ndarray  # the course's days, ascending (float)
    values: dict[str, np.ndarray]  # day column -> values, one per day
    missing: dict[str, np.ndarray]  # day column -> True where not recorded (null)
    summary: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.patient_id}, infusion {self.infusion}" if self.infusion is not None else str(self.patient_id)

    def value(self, key: str) -> Any:
        return self.summary.get(key)

    def recorded(self, column: str) -> np.ndarray:
        """True on the days where ``column`` is recorded (all False when the column is absent)."""
        missing = self.missing.get(column)
        return np.zeros(len(self.day), dtype=bool) if missing is None else ~missing

    def series(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Days and values of the days where ``column`` is recorded."""
        if column not in self.values:
            return np.empty(0), np.empty(0)
        on = ~self.missing[column]
        return self.day[on], self.values[column][on]

    @property
    def first_day(self) -> float:
        return float(self.day.min()) if len(self.day) else 0.0

    @property
    def last_day(self) -> float:
        return float(self.day.max()) if len(self.day) else 0.0


def course_table(a: Assessment) -> pl.DataFrame:
    """_course, patient_id, infusion of every assessed course, in input order."""
    courses = a.intake.courses
    if "assessed" in courses.columns:
        courses = courses.filter(pl.col("assessed"))
    return courses.select(COURSE, "patient_id", "infusion").sort(COURSE)


# the day columns the figures draw; a course's days are cut from these alone
FIGURE_COLUMNS = (
    "crs_grade",
    "icans_grade",
    "temp_c",
    "tocilizumab",
    "corticosteroids",
    "vasopressors",
    "o2_device",
    "bm_response",
    "mrd_negative",
    "cns_status",
    "car_copies",
    "b_cells_pct",
    "anc",
    "platelets",
)


@dataclass(frozen=True)
class CourseIndex:
    """Every course's days, summary and identity, cut once per assessment (a report draws three
    figures of every course)."""

    days: pl.DataFrame  # the assessment's days the index was cut from
    courses: dict[int, tuple[str, int | None]]
    spans: dict[int, tuple[int, int]]  # course -> its rows in the arrays below
    day: np.ndarray
    values: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]
    summaries: dict[int, dict[str, Any]]


_last_index: list[CourseIndex] = []


def course_index(a: Assessment) -> CourseIndex:
    if _last_index and _last_index[0].days is a.days:
        return _last_index[0]
    columns = [c for c in FIGURE_COLUMNS if c in a.days.columns]
    rows = a.days.select(COURSE, DAY, *columns).sort(COURSE, DAY)
    ids = rows[COURSE].to_numpy()
    firsts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]])) if len(ids) else np.empty(0, dtype=int)
    ends = np.append(firsts[1:], len(ids)).astype(int)
    spans = {int(ids[f]): (int(f), int(e)) for f, e in zip(firsts, ends)}
    courses = {
        int(r[COURSE]): (str(r["patient_id"]), None if r["infusion"] is None else int(r["infusion"]))
        for r in course_table(a).iter_rows(named=True)
    }
    summaries = {int(r[COURSE]): r for r in a.summaries.iter_rows(named=True)}
    index = CourseIndex(
        a.days,
        courses,
        spans,
        rows[DAY].cast(pl.Float64).to_numpy(),
        {c: rows[c].to_numpy() for c in columns},
        {c: rows[c].is_null().to_numpy() for c in columns},
        summaries,
    )
    _last_index[:] = [index]
    return index


def course_of(a: Assessment, course_id: int) -> Course:
    index = course_index(a)
    if course_id not in index.courses:
        raise ValueError(f"no assessed course {course_id}")
    patient_id, infusion = index.courses[course_id]
    first, end = index.spans.get(course_id, (0, 0))
    return Course(
        int(course_id),
        patient_id,
        infusion,
        index.day[first:end],
        {c: v[first:end] for c, v in index.values.items()},
        {c: m[first:end] for c, m in index.missing.items()},
        index.summaries.get(course_id, {}),
    )


def parameter(a: Assessment, name: str, ruleset_id: str | None = None) -> tuple[Parameter, str] | None:
    """The parameter ``name`` and the id of the rule set it comes from: from ``ruleset_id`` when
    that rule set is in use and declares it, else from the first rule set that does; None when
    no rule set in use declares it (the figure then draws no line and says so)."""
    found = None
    for rs in a.rulesets:
        p = rs.parameters.get(name)
        if p is None or not isinstance(p.value, (int, float)) or isinstance(p.value, bool):
            continue
        if rs.id == ruleset_id:
            return p, rs.id
        if found is None:
            found = (p, rs.id)
    return found


def threshold_text(p: Parameter, ruleset_id: str) -> str:
    unit = f" {p.unit}" if p.unit else ""
    return f"{p.value:g}{unit} ({ruleset_id}: {p.name})"
