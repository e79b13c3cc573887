"""The cohort on the terminal: one line per course, then the cohort's rates
with their Wilson intervals, grade distributions and medians."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from carscore.cli.console import literal
from carscore.cli.render import INLINE_REASONS_MIN_WIDTH, _bool, _class, _day_or_dash, _grade, _num
from carscore.cohort import rate_labels
from carscore.presentation import OutputView, rate_views, shown

# the course columns around the grades, which come from the rule sets' outputs
COHORT_BEFORE = ("Patient", "Inf.")
COHORT_AFTER = ("Toci day", "Best marrow", "MRD-neg", "CNS base", "CNS remission", "Relapse", "Cmax", "CAR loss")
COHORT_COMPACT = ("Patient", "Inf.", "Best marrow", "CNS remission", "Relapse")


def _course_cells(s: dict[str, Any], grades: tuple[OutputView, ...]) -> dict[str, Any]:
    relapse = s.get("bm_relapse_day") if s.get("bm_relapse_day") is not None else s.get("cns_relapse_day")
    cells = {
        "Patient": literal(s["patient_id"]),
        "Inf.": str(s["infusion"]),
        "Toci day": _day_or_dash(s.get("tocilizumab_first_day")),
        "Best marrow": _class(s.get("best_bm_response")),
        "MRD-neg": _bool(True) if s.get("mrd_negative_remission") else Text("–", style="dim"),
        "CNS base": _class(s.get("cns_status_baseline")),
        "CNS remission": _day_or_dash(s.get("cns_remission_day")),
        "Relapse": Text(_day_or_dash(relapse), style="red" if relapse is not None else "dim"),
        "Cmax": _num(s.get("car_cmax")),
        "CAR loss": _day_or_dash(s.get("car_loss_day")),
    }
    for i, view in enumerate(grades):
        cells[f"{view.label} max"] = _grade(s.get(view.summary_key("max_grade")))
        if i == 0:  # the reference grade's onset
            cells[f"{view.label} onset"] = _day_or_dash(s.get(view.summary_key("onset_day")))
    return cells


def _cohort_columns(grades: tuple[OutputView, ...], wide: bool) -> list[str]:
    graded = [f"{v.label} max" for v in grades]
    if not wide:
        return [*COHORT_COMPACT[:2], *graded, *COHORT_COMPACT[2:]]
    onset = [f"{grades[0].label} onset"] if grades else []
    return [*COHORT_BEFORE, *graded[:1], *onset, *graded[1:], *COHORT_AFTER]


# a long patient id wraps inside its column instead of squeezing the others
PATIENT_COLUMN_MIN_WIDTH, PATIENT_COLUMN_MAX_WIDTH = 8, 24


def render_cohort(a: Any, stats: dict[str, Any], console: Console, limit: int | None = None) -> None:
    """The courses (``limit`` at most: csv and json hold them all), then the cohort's outcomes."""
    from carscore import report

    rows = report.summary_rows(a)
    t = Table(title=f"Courses assessed: {len(rows)}", title_justify="left", box=box.SIMPLE_HEAVY)
    wide = console.width >= INLINE_REASONS_MIN_WIDTH
    grades = shown(a.rulesets).grades
    names = _cohort_columns(grades, wide)
    for name in names:
        if name == "Patient":
            t.add_column(name, overflow="fold", min_width=PATIENT_COLUMN_MIN_WIDTH, max_width=PATIENT_COLUMN_MAX_WIDTH)
        else:
            t.add_column(name)
    for s in rows[:limit]:
        cells = _course_cells(s, grades)
        t.add_row(*(cells[n] for n in names))
    if limit is not None and len(rows) > limit:
        t.caption = f"first {limit} of {len(rows):,} courses shown: add --all to show them all, or use --format csv or json"
    console.print(t)
    console.print(cohort_table(stats, grades, tuple(rate_views(a.rulesets))))


def cohort_table(stats: dict[str, Any], grades: tuple[OutputView, ...] = (), rates: tuple[OutputView, ...] = ()) -> Table:
    level = round(stats.get("confidence", 0.95) * 100)
    t = Table(title=f"Cohort outcomes (N = {stats['n_patients']})", title_justify="left", box=box.SIMPLE_HEAVY)
    t.add_column("Outcome")
    t.add_column("n/N", justify="right")
    t.add_column("%", justify="right")
    t.add_column(f"{level} % CI (Wilson)", justify="right")
    shown_rates = [(key, label) for key, label in rate_labels(grades, rates).items() if key in stats]
    for key, label in shown_rates:
        r = stats[key]
        pct = "–" if r["rate"] is None else f"{100 * r['rate']:.1f}"
        ci = "–" if r["ci_low"] is None else f"{100 * r['ci_low']:.1f}–{100 * r['ci_high']:.1f}"
        t.add_row(label, f"{r['count']}/{r['n']}", pct, ci)
    for view in grades:
        dist = stats[view.summary_key("grades")]
        t.add_row(f"{view.label} maximum grade 0/1/2/3/4/5", "/".join(str(dist[str(g)]) for g in range(6)), "", "")
        onset, dur = stats[view.summary_key("onset_day")], stats[view.summary_key("days")]
        if onset["n"]:
            t.add_row(f"{view.label} onset day, median (range)", "", f"{onset['median']:g}", f"{onset['min']}–{onset['max']}")
            t.add_row(f"{view.label} days, median (range)", "", f"{dur['median']:g}", f"{dur['min']}–{dur['max']}")
    return t
