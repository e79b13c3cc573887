"""The report as plain data for its template: the cohort's rates and grade
distributions, one section per course, the rule sets used and the problems.

Rates and grades come from the rule sets' ``outputs:`` declarations
(carscore.presentation), as ``carscore cohort`` shows them on the terminal;
no rule set is named here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from carscore.cohort import rate_labels
from carscore.htmlreport.course import CourseSection, anchors, course_section
from carscore.htmlreport.values import Cell, class_value, day, grade, percent
from carscore.presentation import OutputView, rate_views, shown

GRADES = range(6)


@dataclass
class RateRow:
    label: str
    count: int
    n: int
    percent: str
    interval: str


@dataclass
class Distribution:
    label: str
    counts: list[int]  # courses by maximum grade 0-5
    not_assessable: int  # courses in which it could not be graded (never counted as 0)
    onset: str  # median (range) of the onset day
    duration: str  # median (range) of the days graded >= 1


@dataclass
class CourseLink:
    anchor: str
    patient_id: str
    infusion: int
    cells: list[Cell]


@dataclass
class Cohort:
    n_courses: int
    confidence: int  # per cent
    rates: list[RateRow]
    distributions: list[Distribution]
    overview_columns: list[str]
    overview: list[CourseLink]


@dataclass
class RuleSetRow:
    id: str
    version: str
    system: str
    citation: str
    path: str
    sha256: str
    origin: str
    changed: list[tuple[str, str, str]]  # (parameter, value in use, built-in value)


@dataclass
class Problem:
    severity: str
    where: str
    message: str


@dataclass
class Page:
    version: str
    written: str  # when the report was written (UTC, ISO 8601)
    inputs: list[str]
    cohort: Cohort
    courses: list[CourseSection]
    rulesets: list[RuleSetRow]
    problems: list[Problem]
    swimmer: list[Any] = field(default_factory=list)  # drawings.InlineFigure
    figure_notes: list[str] = field(default_factory=list)  # figures that could not be drawn, and why
    figure_definitions: str = ""  # SVG markup: the hatch patterns the figures share
    figure_styles: str = ""  # CSS: the classes of the figures' elements


def page(a: Any, stats: dict[str, Any], inputs: list[str], written: str) -> Page:
    """Everything the report shows except the figures (drawings.py adds them)."""
    from carscore import report

    document = report.build_document(a, include_days=False, cohort=stats)
    view = shown(a.rulesets)
    summaries = report.summary_rows(a)
    days = report.day_rows(a)
    measures = _measures_by_course(a)
    links = anchors([(s["patient_id"], s["infusion"]) for s in summaries])
    courses = [
        course_section(anchor, s, days.get(s["_course"], []), measures.get(s["_course"], []), view, a.rulesets)
        for anchor, s in zip(links, summaries)
    ]
    return Page(
        version=document["carscore"],
        written=written,
        inputs=inputs,
        cohort=cohort(stats, view.grades, tuple(rate_views(a.rulesets)), summaries, links),
        courses=courses,
        rulesets=ruleset_rows(document["rulesets"], a.rulesets),
        problems=problems(document["problems"]),
    )


def _measures_by_course(a: Any) -> dict[int, list[dict[str, Any]]]:
    from carscore.compile import COURSE, DAY
    from carscore.htmlreport.course import DISEASE_MEASURES

    wanted = [COURSE, DAY, *(name for name, _ in DISEASE_MEASURES if name in a.days.columns)]
    out: dict[int, list[dict[str, Any]]] = {}
    for row in a.days.select(wanted).iter_rows(named=True):
        out.setdefault(row.pop(COURSE), []).append(row)
    return out


# --- the cohort ---------------------------------------------------------------------


def cohort(
    stats: dict[str, Any],
    grades: tuple[OutputView, ...],
    rates: tuple[OutputView, ...],
    summaries: list[dict[str, Any]],
    links: list[str],
) -> Cohort:
    keyed = [(key, label) for key, label in rate_labels(grades, rates).items() if key in stats]
    rows = []
    for key, label in keyed:
        r = stats[key]
        interval = "–" if r["ci_low"] is None else f"{percent(r['ci_low'])}–{percent(r['ci_high'])}"
        rows.append(RateRow(label, r["count"], r["n"], percent(r["rate"]), interval))
    distributions = []
    for view in grades:
        counts = stats.get(view.summary_key("grades"))
        if counts is None:
            continue
        numbers = [int(counts[str(g)]) for g in GRADES]
        distributions.append(
            Distribution(
                view.label,
                numbers,
                stats["n_patients"] - sum(numbers),
                _median_range(stats.get(view.summary_key("onset_day"))),
                _median_range(stats.get(view.summary_key("days"))),
            )
        )
    columns = ["Patient", "Infusion", *(f"{v.label} max" for v in grades), "Best marrow", "Relapse day", "CAR loss day"]
    overview = []
    for anchor, s in zip(links, summaries):
        relapse = s.get("bm_relapse_day") if s.get("bm_relapse_day") is not None else s.get("cns_relapse_day")
        cells = [grade(s.get(v.summary_key("max_grade"))) for v in grades]
        cells += [class_value(s.get("best_bm_response")), Cell(day(relapse), "num"), Cell(day(s.get("car_loss_day")), "num")]
        overview.append(CourseLink(anchor, str(s["patient_id"]), s["infusion"], cells))
    return Cohort(stats["n_patients"], round(100 * stats.get("confidence", 0.95)), rows, distributions, columns, overview)


def _median_range(described: dict[str, Any] | None) -> str:
    if not described or not described.get("n"):
        return "–"
    return f"{described['median']:g} ({described['min']}–{described['max']}), n = {described['n']}"


# --- rule sets and problems ------------------------------------------------------------


def ruleset_rows(info: list[dict[str, Any]], rulesets: list[Any]) -> list[RuleSetRow]:
    systems = {rs.id: rs.system for rs in rulesets}
    rows = []
    for entry in info:
        origin = "built-in" if entry.get("builtin") else ("from --rules" if entry.get("builtin") is False else "")
        changed = [
            (name, _shown_value(values.get("value")), _shown_value(values.get("builtin_value")))
            for name, values in (entry.get("changed_parameters") or {}).items()
        ]
        rows.append(
            RuleSetRow(
                id=str(entry["id"]),
                version=str(entry.get("version") or ""),
                system=systems.get(entry["id"]) or "",
                citation=str(entry.get("citation") or ""),
                path=str(entry.get("path") or ""),
                sha256=str(entry.get("sha256") or ""),
                origin=origin,
                changed=changed,
            )
        )
    return rows


def _shown_value(value: Any) -> str:
    return "–" if value is None else str(value)


def problems(listed: list[dict[str, Any]]) -> list[Problem]:
    out = []
    for p in listed:
        where = ", ".join(
            f"{label} {p[key]}"
            for key, label in (("file", "file"), ("row", "row"), ("column", "column"))
            if p.get(key) is not None
        )
        message = str(p.get("message") or "")
        if p.get("value") is not None:
            message += f" (value {p['value']!r})"
        out.append(Problem(str(p.get("severity") or "error"), where, message))
    return out
