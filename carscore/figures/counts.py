"""Blood counts of one course: ANC and platelets with the ICAHT thresholds, neutropenic days shaded."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from carscore.assess import Assessment
from carscore.figures.course_data import Course, parameter
from carscore.figures.drawing import (
    Drawing,
    drawn,
    empty_note,
    finish_day_axes,
    margins,
    mark_day_zero,
    new_figure,
    panel_title,
    stacked_day_axes,
)
from carscore.figures.palette import OKABE_ITO, SHADE_COLOUR, THRESHOLD_COLOUR

# ICAHT counts ANC at or below these (EHA/EBMT 2023, criteria §5); T-ICAHT platelets strictly below
ANC_THRESHOLDS = (("anc_severe_max", "ANC ≤ {v:g} (severe)", "--"), ("anc_profound_max", "ANC ≤ {v:g} (profound)", ":"))
PLATELET_THRESHOLDS = (
    ("plt_mild_below", "< {v:g}", "-."),
    ("plt_moderate_below", "< {v:g}", ":"),
    ("plt_severe_below", "< {v:g} (severe)", "--"),
)


@drawn
def counts_drawing(a: Assessment, course: Course) -> Drawing:
    figure = new_figure(8.0, 5.0)
    anc_ax, plt_ax = stacked_day_axes(figure, [1, 1], margins(8.0, 5.0, gap=0.12))
    severe = parameter(a, "anc_severe_max", "icaht")
    neutropenic = _anc_panel(anc_ax, a, course, severe)
    _platelet_panel(plt_ax, a, course)
    for ax in (anc_ax, plt_ax):
        mark_day_zero(ax)
    finish_day_axes([anc_ax, plt_ax], course.first_day, course.last_day)

    grades = _icaht_words(course)
    title = f"Blood counts: {course.label} ({grades})"
    panel_title(anc_ax, title)
    if severe is None:
        shading = "no severe-neutropenia threshold in the rule sets in use, so no days are shaded"
    else:
        spans = ", ".join(f"day {a:g}" if a == b else f"days {a:g} to {b:g}" for a, b in neutropenic) or "on no day"
        shading = f"neutropenic (ANC ≤ {severe[0].value:g} {severe[0].unit}) {spans}"
    alt = f"Absolute neutrophil count and platelets by day since infusion for {course.label}: {shading}; {grades}."
    return Drawing(figure, title, alt)


def _icaht_words(course: Course) -> str:
    early, late = course.value("icaht_early_grade"), course.value("icaht_late_grade")
    words = [f"early ICAHT grade {early}" if early is not None else "early ICAHT not assessable"]
    if late is not None:
        words.append(f"late ICAHT grade {late}")
    return ", ".join(words)


def neutropenic_runs(days: np.ndarray, anc: np.ndarray, at_or_below: float) -> list[tuple[float, float]]:
    """First and last day of each run of consecutive measurements at or below the threshold: the
    days between two such measurements count as neutropenic, as ICAHT counts them (criteria §5,
    values interpolated between measurements)."""
    low = anc <= at_or_below
    if not low.any():
        return []
    # a run starts where a low value follows a measurement that was not low (or none)
    starts = np.flatnonzero(low & ~np.concatenate([[False], low[:-1]]))
    ends = np.flatnonzero(low & ~np.concatenate([low[1:], [False]]))
    return [(float(days[s]), float(days[e])) for s, e in zip(starts, ends)]


def _anc_panel(ax: Axes, a: Assessment, course: Course, severe) -> list[tuple[float, float]]:
    ax.set_ylabel("ANC (×10⁹/L)")
    days, anc = course.series("anc")
    if not len(days):
        empty_note(ax, "no ANC measurements")
        return []
    anc = anc.astype(float)
    runs: list[tuple[float, float]] = []
    if severe is not None:
        runs = neutropenic_runs(days, anc, severe[0].value)
        if runs:
            ax.broken_barh(
                [(first - 0.5, last - first + 1) for first, last in runs],
                (0, 1),
                transform=ax.get_xaxis_transform(),
                facecolors=SHADE_COLOUR,
                zorder=0,
                label=f"neutropenic (ANC ≤ {severe[0].value:g})",
                gid="neutropenic-days",
            )
    ax.plot(days, anc, color=OKABE_ITO["blue"], marker="o", markersize=3, linewidth=1.3, label="ANC")
    for name, text, style in ANC_THRESHOLDS:
        found = parameter(a, name, "icaht")
        if found:
            ax.axhline(found[0].value, color=THRESHOLD_COLOUR, linestyle=style, linewidth=1, label=text.format(v=found[0].value))
    if severe is None:
        ax.text(0.01, 0.9, "no ICAHT thresholds in the rule sets in use", transform=ax.transAxes, fontsize=7, color="#555555")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper center", frameon=False, fontsize=7)
    return runs


def _platelet_panel(ax: Axes, a: Assessment, course: Course) -> None:
    ax.set_ylabel("Platelets (×10⁹/L)")
    days, platelets = course.series("platelets")
    if not len(days):
        empty_note(ax, "no platelet counts")
        return
    ax.plot(
        days,
        platelets.astype(float),
        color=OKABE_ITO["reddish_purple"],
        marker="s",
        markersize=3,
        linewidth=1.3,
        label="platelets",
    )
    drawn = 0
    for name, text, style in PLATELET_THRESHOLDS:
        found = parameter(a, name, "icaht")
        if found:
            drawn += 1
            ax.axhline(
                found[0].value,
                color=THRESHOLD_COLOUR,
                linestyle=style,
                linewidth=0.9,
                label=f"T-ICAHT {text.format(v=found[0].value)}",
            )
    if not drawn:
        ax.text(0.01, 0.9, "no T-ICAHT thresholds in the rule sets in use", transform=ax.transAxes, fontsize=7, color="#555555")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper center", frameon=False, fontsize=7)
