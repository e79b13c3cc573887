"""The cohort toxicity table of a paper (outputs.md §3): its cells, from the
cohort statistics of the JSON document (``cohort_of``) and, for treatment
during an episode, from the episodes of outputs.md §0.

Percentages are rounded half up to one decimal from the exact fraction
(1/16 -> 6.3), never by float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import polars as pl

from carscore.assess import Assessment
from carscore.compile import COURSE, DAY
from carscore.export.episodes import TREATMENTS, episode_days, treatment_days
from carscore.export.parameters import GradeParameter, grade_parameters
from carscore.presentation import COHORT_RATES

DASH = "\u2013"  # en dash: ranges and empty cells
TREATMENT_WORDS = {
    "tocilizumab": "Tocilizumab",
    "corticosteroids": "Corticosteroids",
    "other_anticytokine": "Other anti-cytokine",
}


@dataclass(frozen=True)
class Cell:
    text: str
    n: int | None = None
    denominator: int | None = None
    percent: Fraction | None = None  # exact; printed rounded half up
    median: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass
class Row:
    row_id: str
    label: str
    cells: dict[str, Cell] = field(default_factory=dict)  # by system id; absent: not graded by that system


@dataclass
class Table2:
    systems: list[tuple[str, str]]  # (system id, column heading)
    rows: list[Row]
    n_courses: int
    footnotes: list[str]


def percent_text(percent: Fraction) -> str:
    """Half up to one decimal from the exact value: 6.25 -> 6.3."""
    tenths = (percent * 10 + Fraction(1, 2)).__floor__()
    return f"{tenths // 10}.{tenths % 10}"


def number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def count_cell(count: int, n: int) -> Cell:
    if n == 0:
        return Cell(f"0 ({DASH})", count, n, None)
    percent = Fraction(100 * count, n)
    return Cell(f"{count} ({percent_text(percent)})", count, n, percent)


def median_cell(described: dict[str, Any]) -> Cell:
    n = described.get("n") or 0
    if not n or described.get("median") is None:
        return Cell(DASH, 0)
    median, low, high = described["median"], described["min"], described["max"]
    return Cell(f"{number_text(median)} ({number_text(low)}{DASH}{number_text(high)})", n, median=median, low=low, high=high)


def treated_courses(assessment: Assessment, parameter: GradeParameter) -> tuple[dict[str, int], set[str]]:
    """Per treatment: the courses given it on a day of an episode of this grade
    (outputs.md §0); and the treatments no course's input records at all."""
    days = assessment.days
    rows = assessment.intake.rows.join(assessment.summaries.select(COURSE), on=COURSE, how="semi")
    given = treatment_days(rows, assessment.intake.file_columns)
    per_day = episode_days(days, parameter.output.name, parameter.output.counted_from).join(given, on=[COURSE, DAY], how="left")
    open_day = pl.col("episode").is_not_null()
    counts = per_day.group_by(COURSE).agg([(open_day & pl.col(t).fill_null(False)).any().alias(t) for t in TREATMENTS])
    recorded = {t for t in TREATMENTS if given[f"has_{t}"].any()}
    return {t: int(counts[t].sum()) for t in TREATMENTS}, set(TREATMENTS) - recorded


def _rate_label(name: str, least: float, toxicity: str) -> str:
    return f"{toxicity}, any grade, n (%)" if name == "any" else f"{toxicity}, grade \u2265 {number_text(least)}, n (%)"


def table2(assessment: Assessment, stats: dict[str, Any]) -> Table2:
    """The table's rows: courses, then for each toxicity its 14 rows, one cell per
    grading system that grades it (CRS systems fill the CRS rows; ICANS the
    reference column; CRES its own rows)."""
    graded = assessment.days.columns
    parameters = [p for p in grade_parameters(assessment.rulesets, unique_codes=False) if p.output.name in graded]
    systems: list[tuple[str, str]] = []
    for p in parameters:
        if p.output.system not in [s for s, _ in systems]:
            systems.append((p.output.system, p.system_name))
    blocks: dict[str, list[GradeParameter]] = {}
    for p in parameters:
        blocks.setdefault(p.output.toxicity, []).append(p)
    n = stats["n_patients"]
    rows = [Row("courses", "Courses, N", {s: Cell(str(n), n) for s, _ in systems})]
    unrecorded: set[str] = set()
    for toxicity, members in blocks.items():
        word = toxicity.upper()
        block = [Row(f"{toxicity}_assessed", f"{word} assessable, n")]
        block += [Row(f"{toxicity}_{name}", _rate_label(name, least, word)) for name, least in COHORT_RATES]
        block += [Row(f"{toxicity}_max_grade_{k}", f"{word} maximum grade {k}, n (%)") for k in range(6)]
        block += [
            Row(f"{toxicity}_onset_day", f"{word} onset, day, median (range)"),
            Row(f"{toxicity}_days", f"{word} days (grade \u2265 1), median (range)"),
        ]
        block += [Row(f"{toxicity}_{t}", f"{TREATMENT_WORDS[t]} during {word}, n (%)") for t in TREATMENTS]
        for p in members:
            system, key = p.output.system, p.output.key
            any_rate = stats.get(key(COHORT_RATES[0][0])) or {"count": 0, "n": 0}
            cells = [Cell(str(any_rate["n"]), any_rate["n"])]
            for name, _ in COHORT_RATES:
                rate = stats.get(key(name)) or {"count": 0, "n": 0}
                cells.append(count_cell(rate["count"], rate["n"]))
            grades = stats.get(key("grades")) or {}
            cells += [count_cell(int(grades.get(str(k), 0)), any_rate["n"]) for k in range(6)]
            cells += [median_cell(stats.get(key("onset_day")) or {}), median_cell(stats.get(key("days")) or {})]
            treated, missing = treated_courses(assessment, p)
            unrecorded |= missing
            for t in TREATMENTS:
                cells.append(Cell(DASH) if t in missing else count_cell(treated[t], any_rate["count"]))
            for row, cell in zip(block, cells):
                row.cells[system] = cell
        rows += block
    return Table2(systems, rows, n, footnotes(n, unrecorded))


def footnotes(n: int, unrecorded: set[str]) -> list[str]:
    notes = [
        f"N = {n} courses: every course (one patient, one CAR-T infusion) of the input; a patient infused twice counts twice.",
        "Assessable: courses whose maximum grade is known (at least one day with the data to grade it). "
        "Any grade, grade thresholds and each maximum grade: n (%) of the assessable courses.",
        "Onset (first day with grade \u2265 1) and days with grade \u2265 1: median (min\u2013max) "
        "over the courses with an episode.",
        "Treatment: courses given it on a day of an episode of that toxicity (from its onset to the day before the first "
        "later day graded 0, or to the last day of data), n (%) of the courses with that toxicity (any grade).",
        "Percentages are rounded half up to one decimal from the exact fraction; a blank column means the system does "
        "not grade that toxicity.",
    ]
    if unrecorded:
        words = ", ".join(TREATMENT_WORDS[t].lower() for t in TREATMENTS if t in unrecorded)
        notes.append(f"{DASH}: not recorded in the input ({words}).")
    return notes
