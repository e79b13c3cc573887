"""One course day by day: CRS and ICANS grades, temperature, treatments and disease assessments."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Patch

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
from carscore.figures.palette import (
    DAY_LINE_COLOUR,
    GRADE_COLOURS,
    GRADE_HATCHES,
    NOT_ASSESSABLE_EDGE,
    NOT_ASSESSABLE_HATCH,
    OKABE_ITO,
    THRESHOLD_COLOUR,
)

GRADES = (("crs_grade", "CRS"), ("icans_grade", "ICANS"))
TOP_GRADE = 5
# the grade-0 bar is a low stub: assessed and no toxicity, unlike a day with no bar (not recorded)
GRADE_ZERO_HEIGHT = 0.15
BAR_WIDTH = 0.9
TREATMENT_ROWS = (
    ("tocilizumab", "Tocilizumab", OKABE_ITO["blue"]),
    ("corticosteroids", "Corticosteroids", OKABE_ITO["bluish_green"]),
    ("vasopressors", "Vasopressors", OKABE_ITO["vermillion"]),
    ("o2_device", "Oxygen", OKABE_ITO["sky_blue"]),
    ("bm_response", "Marrow", OKABE_ITO["black"]),
    ("cns_status", "CSF", OKABE_ITO["reddish_purple"]),
)
DEVICE_WORDS = {
    "blow_by": "blow-by",
    "nasal_cannula": "NC",
    "high_flow_nasal_cannula": "HFNC",
    "facemask": "mask",
    "nonrebreather": "NRB",
    "venturi": "Venturi",
    "cpap": "CPAP",
    "bipap": "BiPAP",
    "mechanical_ventilation": "ventilated",
}


@drawn
def timeline_drawing(a: Assessment, course: Course) -> Drawing:
    figure = new_figure(8.0, 6.4)
    layout = margins(8.0, 6.4, left=1.15, top=0.6, gap=0.12)
    axes = stacked_day_axes(figure, [1.2, 1.2, 1.3, 1.8], layout)
    words: list[str] = []
    for ax, (column, name) in zip(axes[:2], GRADES):
        words.append(_grade_panel(ax, course, column, name))
    words.append(_temperature_panel(axes[2], a, course))
    _events_panel(axes[3], course)
    for ax in axes:
        mark_day_zero(ax)
    finish_day_axes(axes, course.first_day, course.last_day)
    handles = [
        Patch(facecolor=GRADE_COLOURS[g], hatch=GRADE_HATCHES[g], edgecolor="black", linewidth=0.4, label=f"grade {g}")
        for g in range(TOP_GRADE + 1)
    ]
    handles.append(Patch(facecolor="none", hatch=NOT_ASSESSABLE_HATCH, edgecolor=NOT_ASSESSABLE_EDGE, label="not assessable"))
    figure.legend(handles=handles, loc="upper right", bbox_to_anchor=(1.0, 1.0), ncols=7, frameon=False, fontsize=7)
    title = f"Daily toxicity grades and treatments: {course.label}"
    panel_title(axes[0], title)
    alt = f"Day-by-day timeline of {course.label}: " + "; ".join(w for w in words if w) + "."
    return Drawing(figure, title, alt)


def _grade_panel(ax: Axes, course: Course, column: str, name: str) -> str:
    ax.set_ylabel(f"{name} grade")
    ax.set_ylim(0, TOP_GRADE + 0.3)
    ax.set_yticks(range(TOP_GRADE + 1))
    if column not in course.values or not len(course.day):
        empty_note(ax, f"no {name} grades (not graded by the rule sets in use)")
        return f"no {name} grades"
    days, grades, missing = course.day, course.values[column], course.missing[column]
    if missing.any():
        day_bars(
            ax,
            days[missing],
            TOP_GRADE,
            fill=False,
            hatch=NOT_ASSESSABLE_HATCH,
            edgecolor=NOT_ASSESSABLE_EDGE,
            linewidth=0,
            gid=f"{column}-not-assessable",
        )
    graded = grades[~missing].astype(float)
    graded_days = days[~missing]
    for g in range(TOP_GRADE + 1):
        on = graded == g
        if not on.any():
            continue
        height = GRADE_ZERO_HEIGHT if g == 0 else float(g)
        day_bars(
            ax,
            graded_days[on],
            height,
            facecolor=GRADE_COLOURS[g],
            hatch=GRADE_HATCHES[g],
            edgecolor="black",
            linewidth=0.3,
            gid=f"{column}-grade-{g}",
        )
    if not len(graded):
        ax.text(
            0.5,
            0.5,
            f"{name} not assessable on any day",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=8,
            backgroundcolor="white",
        )
        return f"{name} not assessable on any day"
    worst = int(graded.max())
    if worst == 0:
        return f"no {name} (grade 0 on every assessable day)"
    on = graded_days[graded >= 1]
    return f"{name} up to grade {worst} (days {on.min():g} to {on.max():g})"


def day_bars(ax: Axes, days: np.ndarray, height: float, **style: object) -> None:
    """Bars of one height on the given days, drawn as one stepped outline (one artist per grade,
    not one per day: hundreds of figures are drawn for a report)."""
    half = BAR_WIDTH / 2
    edges = np.column_stack([days - half, days + half]).ravel()
    values = np.zeros(len(edges) - 1)
    values[0::2] = height
    ax.stairs(values, edges, baseline=0, fill=style.pop("fill", True), **style)


def _temperature_panel(ax: Axes, a: Assessment, course: Course) -> str:
    ax.set_ylabel("Temperature (°C)")
    days, temps = course.series("temp_c")
    if not len(days):
        empty_note(ax, "no temperature recorded")
        return ""
    ax.plot(days, temps.astype(float), color=OKABE_ITO["vermillion"], marker="o", markersize=2.5, linewidth=1.1)
    fever = parameter(a, "fever_temp_c", "astct_crs")
    if fever:
        p, rs_id = fever
        ax.axhline(p.value, color=THRESHOLD_COLOUR, linestyle="--", linewidth=0.9)
        ax.annotate(
            f"fever ≥ {p.value:g} °C",
            (0.005, p.value),
            xycoords=("axes fraction", "data"),
            xytext=(0, 2),
            textcoords="offset points",
            fontsize=7,
            color=THRESHOLD_COLOUR,
        )
    else:
        ax.text(0.01, 0.9, "no fever threshold in the rule sets in use", transform=ax.transAxes, fontsize=7, color="#555555")
    top = float(np.nanmax(temps))
    return f"highest temperature {top:.1f} °C on day {days[int(np.nanargmax(temps))]:g}"


def _events_panel(ax: Axes, course: Course) -> None:
    rows = len(TREATMENT_ROWS)
    ax.set_ylim(-0.6, rows - 0.4)
    ax.set_yticks(range(rows), [label for _, label, _ in TREATMENT_ROWS][::-1])
    ax.hlines(range(rows), 0, 1, transform=ax.get_yaxis_transform(), colors=DAY_LINE_COLOUR, linewidth=0.6, zorder=0)
    tick = {"linestyle": "none", "marker": "|", "markersize": 11, "markeredgewidth": 2.2}
    for i, (column, _, colour) in enumerate(TREATMENT_ROWS):
        y = rows - 1 - i
        if column not in course.values:
            continue
        on = course.recorded(column)
        values = course.values[column]
        if column in ("tocilizumab", "corticosteroids"):
            given = course.day[on][values[on].astype(bool)]
            ax.plot(given, np.full(len(given), y), color=colour, **tick)
        elif column == "vasopressors":
            counts = values[on].astype(float)
            running = counts > 0
            days = course.day[on][running]
            ax.plot(days, np.full(len(days), y), linestyle="none", marker="s", markersize=5, color=colour)
            for d, n in zip(days, counts[running]):
                if n > 1:
                    ax.annotate(f"×{n:g}", (d, y), xytext=(4, 0), textcoords="offset points", fontsize=6, va="center")
        elif column == "o2_device":
            _oxygen(ax, course.day[on], values[on], y, colour, tick)
        else:
            _assessments(ax, course, column, y, colour)


def _oxygen(ax: Axes, days: np.ndarray, devices: np.ndarray, y: int, colour: str, tick: dict) -> None:
    """Oxygen given (any device but none), the device named where it changes."""
    given = devices != "none"
    if not given.any():
        return
    ax.plot(days[given], np.full(int(given.sum()), y), color=colour, **tick)
    previous = None
    for d, device in zip(days, devices):
        if device != previous and device != "none":
            ax.annotate(
                DEVICE_WORDS.get(device, device), (d, y), xytext=(0, 6), textcoords="offset points", fontsize=6, ha="center"
            )
        previous = device


def _assessments(ax: Axes, course: Course, column: str, y: int, colour: str) -> None:
    """Marrow and CSF assessments, each marked with its result (and the marrow's MRD)."""
    on = course.recorded(column)
    if not on.any():
        return
    days = course.day[on]
    ax.plot(days, np.full(len(days), y), linestyle="none", marker="D", markersize=4, color=colour)
    mrd = course.values.get("mrd_negative") if column == "bm_response" else None
    mrd_on = course.recorded("mrd_negative")[on] if mrd is not None else np.zeros(len(days), dtype=bool)
    mrd_values = mrd[on] if mrd is not None else np.zeros(len(days), dtype=object)
    for d, result, known, negative in zip(days, course.values[column][on], mrd_on, mrd_values):
        text = str(result) + ((" MRD−" if negative else " MRD+") if known else "")
        ax.annotate(text, (d, y), xytext=(0, 6), textcoords="offset points", fontsize=6, ha="center")
