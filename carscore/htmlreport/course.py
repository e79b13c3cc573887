"""One course's section of the report, as plain data: its summary lines, its
disease assessments, its days with grades and reasons, and its flags.

What is graded and how it is labelled comes from the rule sets' ``outputs:``
(carscore.presentation), as on the terminal; the summary keys named here are
the contract's (section 2), filled by whichever rule set decides them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from carscore.htmlreport.values import (
    NOT_KNOWN,
    Cell,
    course_value,
    day,
    flag,
    measured,
    not_known,
    number,
    output_cell,
)
from carscore.presentation import OutputView, Shown, day_ranges

# the disease assessments of the contract (section 1, "Disease assessments" and
# "Cellular kinetics"), as the clinic names them
DISEASE_MEASURES: tuple[tuple[str, str], ...] = (
    ("bm_blasts_pct", "Marrow blasts %"),
    ("bm_mrd_pct", "MRD %"),
    ("mrd_method", "MRD method"),
    ("pb_blasts_pct", "Blood blasts %"),
    ("extramedullary", "Extramedullary disease"),
    ("csf_wbc", "CSF WBC/µL"),
    ("csf_rbc", "CSF RBC/µL"),
    ("csf_blasts", "CSF cytospin"),
    ("csf_flow_positive", "CSF flow"),
    ("cranial_nerve_palsy", "Cranial nerve palsy"),
    ("cns_imaging_positive", "CNS imaging"),
    ("car_copies", "CAR copies/µg"),
    ("b_cells_pct", "B cells %"),
)
# how a yes/no finding reads: CSF cytospin "blasts"/"clear", the others positive/negative
FINDING_WORDS = {"csf_blasts": ("blasts", "clear")}
# the threshold below which CAR copies count as lost (a parameter of the kinetics rule set)
CAR_THRESHOLD_PARAMETER = "car_copies_negative_below"


@dataclass
class SummaryLine:
    label: str
    text: str
    css: str = ""


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Cell]]


@dataclass
class DayRow:
    day: int
    cells: list[Cell]
    flags: list[str]
    reasons: list[tuple[str, str]]  # (label of the output it explains, reason)


@dataclass
class CourseSection:
    anchor: str
    course_id: int  # the assessment's course number (the "_course" column)
    patient_id: str
    infusion: int
    file: str
    summary: list[SummaryLine]
    day_columns: list[str]
    days: list[DayRow]
    disease: Table | None
    flags: list[tuple[str, str]]  # (flag id, days)
    figures: list[Any] = field(default_factory=list)  # drawings.InlineFigure

    @property
    def title(self) -> str:
        return f"{self.patient_id} · infusion {self.infusion}"


_UNSAFE_IN_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def anchors(courses: list[tuple[str, int]]) -> list[str]:
    """``course-<patient>-<infusion>`` for each course, unique within the page:
    a patient id is data, so what an id attribute cannot hold is replaced."""
    seen: set[str] = set()
    out = []
    for patient, infusion in courses:
        base = f"course-{_UNSAFE_IN_ID.sub('_', str(patient)).strip('_') or 'patient'}-{infusion}"
        anchor, n = base, 1
        while anchor in seen:
            n += 1
            anchor = f"{base}-{n}"
        seen.add(anchor)
        out.append(anchor)
    return out


def course_section(
    anchor: str,
    summary: dict[str, Any],
    days: list[dict[str, Any]],
    measures: list[dict[str, Any]],
    shown: Shown,
    rulesets: list[Any],
) -> CourseSection:
    """``summary``: report.summary_rows' entry; ``days``: report.day_rows' days of
    the course; ``measures``: the course's rows of Assessment.days (inputs by day)."""
    return CourseSection(
        anchor=anchor,
        course_id=summary["_course"],
        patient_id=str(summary["patient_id"]),
        infusion=summary["infusion"],
        file=str(summary.get("file") or ""),
        summary=summary_lines(summary, shown, rulesets),
        day_columns=["Day", *(v.label for v in shown.columns), "Flags", "Why"],
        days=[_day_row(d, shown) for d in days],
        disease=disease_table(days, measures, shown),
        flags=flag_days(days),
    )


# --- the course summary -----------------------------------------------------------


def summary_lines(s: dict[str, Any], shown: Shown, rulesets: list[Any]) -> list[SummaryLine]:
    lines = [_grade_line(view, s) for view in shown.grades]
    lines.append(
        SummaryLine(
            "Treatment",
            f"tocilizumab from day {day(s.get('tocilizumab_first_day'))}, "
            f"corticosteroids from day {day(s.get('corticosteroids_first_day'))}",
        )
    )
    marrow = f"best response {s.get('best_bm_response') or NOT_KNOWN}"
    if s.get("mrd_negative_remission"):
        marrow += ", MRD-negative"
    if s.get("bm_relapse_day") is not None:
        marrow += f"; marrow relapse day {s['bm_relapse_day']}"
    lines.append(SummaryLine("Marrow", marrow, "relapse" if s.get("bm_relapse_day") is not None else ""))
    cns = f"baseline {s.get('cns_status_baseline') or NOT_KNOWN}"
    if s.get("cns_remission_day") is not None:
        cns += f"; CNS remission day {s['cns_remission_day']}"
    if s.get("cns_relapse_day") is not None:
        cns += f"; CNS relapse day {s['cns_relapse_day']}"
    lines.append(SummaryLine("CNS", cns, "relapse" if s.get("cns_relapse_day") is not None else ""))
    lines.append(_kinetics_line(s, rulesets))
    if s.get("b_cell_recovery_day") is not None:
        lines.append(SummaryLine("B cells", f"recovery after aplasia on day {s['b_cell_recovery_day']}"))
    for view in shown.course_lines:
        value = s.get(view.name)
        if value is None:
            lines.append(SummaryLine(view.label, f"{NOT_KNOWN} (not assessable)", "na"))
        else:
            lines.append(SummaryLine(view.label, course_value(view, value)))
    return lines


def _grade_line(view: OutputView, s: dict[str, Any]) -> SummaryLine:
    top = s.get(view.summary_key("max_grade"))
    if top is None:
        return SummaryLine(view.label, f"max grade {NOT_KNOWN} (not assessable: no data to grade it)", "na")
    text = f"max grade {int(top)}"
    onset = s.get(view.summary_key("onset_day"))
    if onset is not None:
        last, count = s.get(view.summary_key("last_day")), s.get(view.summary_key("days"))
        text += f"; onset day {onset}, last day {day(last)}, {day(count)} day(s)"
    return SummaryLine(view.label, text, f"g{min(max(int(top), 0), 5)}")


def car_threshold(rulesets: list[Any]) -> Any:
    for rs in rulesets:
        p = rs.parameters.get(CAR_THRESHOLD_PARAMETER)
        if p is not None:
            return p
    return None


def _kinetics_line(s: dict[str, Any], rulesets: list[Any]) -> SummaryLine:
    if s.get("car_cmax") is None:
        return SummaryLine("Kinetics", "no CAR copies recorded", "na")
    threshold = car_threshold(rulesets)
    # without the parameter the loss threshold is not named: no number is made up
    at_or_above = f"at or above {number(threshold.value)} copies/µg" if threshold is not None else "detected"
    text = (
        f"Cmax {number(s['car_cmax'])} copies/µg on day {day(s.get('car_tmax_day'))}, "
        f"AUC0-28 {number(s.get('car_auc_0_28'))}, last day {at_or_above} {day(s.get('car_last_detected_day'))}"
    )
    if threshold is None:
        text += f" (no rule set in use gives {CAR_THRESHOLD_PARAMETER})"
    if s.get("car_loss_day") is not None:
        text += f"; CAR loss day {s['car_loss_day']}"
    return SummaryLine("Kinetics", text, "relapse" if s.get("car_loss_day") is not None else "")


# --- the days ---------------------------------------------------------------------


def _day_row(d: dict[str, Any], shown: Shown) -> DayRow:
    reasons = [
        (shown.reason_labels.get(key, key), str(value))
        for key, value in d["reasons"].items()
        if value and not is_quiet(key, d, shown)
    ]
    return DayRow(d["day"], [output_cell(v, d) for v in shown.columns], list(d["flags"]), reasons)


def is_quiet(key: str, d: dict[str, Any], shown: Shown) -> bool:
    """A reason the grade's rule set calls quiet (grade 0 with nothing notable,
    or not assessable): the grade column already says it."""
    view = shown.graded_reasons.get(key)
    if view is None:
        return False
    reason = d["reasons"].get(key) or ""
    if d.get(view.name) is None:
        return reason.startswith("not assessable")
    return d.get(view.name) == 0 and bool(view.quiet) and reason.startswith(view.quiet)


def flag_days(days: list[dict[str, Any]]) -> list[tuple[str, str]]:
    seen: dict[str, list[int]] = {}
    for d in days:
        for f in d["flags"]:
            seen.setdefault(str(f), []).append(d["day"])
    return [(f, day_ranges(ds)) for f, ds in seen.items()]


def disease_table(days: list[dict[str, Any]], measures: list[dict[str, Any]], shown: Shown) -> Table | None:
    """The days with a disease assessment or a CAR-T kinetics sample: the values
    measured, and the classes the rule sets gave (CNS status, marrow response, MRD)."""
    outputs = [v for v in shown.columns if v.kind != "grade"]
    by_day = {d["day"]: d for d in days}
    present = [(name, heading) for name, heading in DISEASE_MEASURES if any(name in m for m in measures[:1])]
    rows = []
    for m in measures:
        d = by_day.get(m["day"], {})
        assessed = any(m.get(name) is not None and m.get(name) is not False for name, _ in present)
        if assessed or any(d.get(v.name) is not None for v in outputs):
            rows.append((m, d))
    if not rows:
        return None
    columns = [(name, heading) for name, heading in present if any(m.get(name) is not None for m, _ in rows)]
    table_rows = []
    for m, d in rows:
        cells = [Cell(str(m["day"]), "num")]
        for name, _ in columns:
            value = m.get(name)
            cells.append(
                flag(value, FINDING_WORDS.get(name, ("positive", "negative"))) if isinstance(value, bool) else measured(value)
            )
        cells += [output_cell(v, d) if d else not_known() for v in outputs]
        table_rows.append(cells)
    return Table(
        "Disease assessments and CAR-T kinetics", ["Day", *(h for _, h in columns), *(v.label for v in outputs)], table_rows
    )
