"""CAR-T kinetics: transgene copies on a log axis and B cells beneath, one or several courses overlaid."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from carscore.assess import Assessment
from carscore.figures.course_data import Course, parameter, threshold_text
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
    COURSE_LINESTYLES,
    COURSE_MARKERS,
    THRESHOLD_COLOUR,
    course_colour,
    number_text,
)

CAR = "car_copies"
B_CELLS = "b_cells_pct"
# labels over lines stay readable on a light box
LABEL_BOX = {"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
NO_THRESHOLD = "no CAR negativity threshold in the rule sets in use"
NO_APLASIA_THRESHOLD = "no B-cell aplasia threshold in the rule sets in use"


@drawn
def kinetics_drawing(a: Assessment, courses: list[Course]) -> Drawing:
    figure = new_figure(8.0, 5.8)
    car_ax, b_ax = stacked_day_axes(figure, [3, 2], margins(8.0, 5.8, top=0.75, gap=0.08))
    negative = parameter(a, "car_copies_negative_below", "thresholds")
    aplasia = parameter(a, "b_cell_aplasia_below_pct", "thresholds")
    first = min((c.first_day for c in courses), default=0.0)
    last = max((c.last_day for c in courses), default=0.0)

    said: list[str] = []
    car_drawn = _car_panel(car_ax, courses, negative, said)
    b_drawn = _b_cell_panel(b_ax, courses, aplasia)
    for ax in (car_ax, b_ax):
        mark_day_zero(ax)
        ax.grid(axis="y", color="#EEEEEE", linewidth=0.6)
    finish_day_axes([car_ax, b_ax], first, last)

    who = _who(courses)
    title = f"CAR-T expansion and persistence: {who}"
    panel_title(car_ax, title)
    if car_drawn or b_drawn:
        handles: dict[str, object] = {}
        for ax in (car_ax, b_ax):
            for handle, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, handle)
        figure.legend(handles.values(), handles.keys(), loc="upper center", bbox_to_anchor=(0.5, 1.0), ncols=3, frameon=False)

    threshold = f"negativity threshold {threshold_text(*negative)}" if negative else NO_THRESHOLD
    alt = f"CAR transgene copies per µg DNA by day since infusion for {who}: " + "; ".join(said) + f"; {threshold}"
    alt += f"; B cells with the aplasia threshold {threshold_text(*aplasia)}." if aplasia and b_drawn else "."
    return Drawing(figure, title, alt)


def _who(courses: list[Course]) -> str:
    if not courses:
        return "no course"
    patients = list(dict.fromkeys(c.patient_id for c in courses))
    if len(patients) == 1 and len(courses) > 1:
        infusions = [str(c.infusion) for c in courses]
        return f"{patients[0]}, infusions {', '.join(infusions[:-1])} and {infusions[-1]}"
    return "; ".join(c.label for c in courses)


def _car_panel(ax: Axes, courses: list[Course], negative, said: list[str]) -> bool:
    ax.set_ylabel("CAR transgene (copies/µg DNA)")
    measured = [(i, c, *c.series(CAR)) for i, c in enumerate(courses)]
    positives = np.concatenate([v[v > 0] for _, _, _, v in measured]) if measured else np.empty(0)
    if not any(len(d) for _, _, d, _ in measured):
        empty_note(ax, "no CAR transgene measurements")
        for c in courses:
            said.append(f"{c.label}: no CAR transgene measurements")
        return False
    ax.set_yscale("log")
    # powers of ten as plain text (10⁵): mathtext labels and minor ticks cost more than the rest of the figure
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=8))
    ax.yaxis.set_major_formatter(FuncFormatter(_power_of_ten))
    ax.yaxis.set_minor_locator(NullLocator())
    low = min([positives.min() if len(positives) else 1.0] + ([negative[0].value] if negative else []))
    floor = max(low / 10, 1e-3)
    many = len(courses) > 1
    undetectable_said = False
    for i, c, days, values in measured:
        colour, style, marker = course_colour(i), COURSE_LINESTYLES[i % 4], COURSE_MARKERS[i % 7]
        name = f"infusion {c.infusion}" if many and len({x.patient_id for x in courses}) == 1 else c.label
        if not len(days):
            said.append(f"{c.label}: no CAR transgene measurements")
            continue
        shown = values > 0
        ax.plot(days[shown], values[shown], color=colour, linestyle=style, marker=marker, markersize=4, linewidth=1.4, label=name)
        if (~shown).any():
            ax.plot(
                days[~shown],
                np.full((~shown).sum(), floor),
                linestyle="none",
                marker="v",
                color=colour,
                markersize=6,
                label=None if undetectable_said else "not detected (0 copies)",
            )
            undetectable_said = True
        said.append(_course_words(ax, c, i, f" ({name})" if many else ""))
    if negative:
        p, rs_id = negative
        ax.axhline(p.value, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1, label=f"negative below {p.value:g} {p.unit}")
    else:
        ax.text(0.01, 0.02, NO_THRESHOLD, transform=ax.transAxes, fontsize=7, color="#555555")
    top = max(positives.max() if len(positives) else 1.0, negative[0].value if negative else 1.0)
    ax.set_ylim(floor / 2, top * 6)
    return True


SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten(value: float, _position: int) -> str:
    if value <= 0:
        return ""
    exponent = int(round(np.log10(value)))
    return f"10{str(exponent).translate(SUPERSCRIPTS)}"


def _course_words(ax: Axes, c: Course, index: int, tag: str) -> str:
    """Cmax/Tmax, CAR loss and relapse of one course, marked on the panel in the course's colour
    (``tag`` names the course when several are overlaid) and put in words."""
    colour = course_colour(index)
    cmax, tmax, loss = c.value("car_cmax"), c.value("car_tmax_day"), c.value("car_loss_day")
    relapse = c.value("bm_relapse_day")
    words = [c.label]
    if cmax is not None and tmax is not None and cmax > 0:
        ax.plot([tmax], [cmax], marker="*", markersize=12, color=colour, markeredgecolor="black", linestyle="none")
        # labels of overlaid courses alternate above and below their peak
        offset = (8, -14) if index % 2 == 0 else (6, 6)
        ax.annotate(
            f"Cmax {number_text(cmax)} (Tmax day {tmax})",
            (tmax, cmax),
            xytext=offset,
            textcoords="offset points",
            fontsize=7,
            bbox=LABEL_BOX,
            zorder=5,
            color=colour,
        )
        words.append(f"peak {number_text(cmax)} copies/µg on day {tmax}")
    for day, what, style in ((loss, "CAR loss", ":"), (relapse, "relapse", "-.")):
        if day is None:
            continue
        ax.axvline(day, color=colour, linestyle=style, linewidth=1.3)
        ax.annotate(
            f"{what} day {day}{tag}",
            (day, 0.97),
            xycoords=("data", "axes fraction"),
            xytext=(-3, 0),
            textcoords="offset points",
            rotation=90,
            fontsize=7,
            bbox=LABEL_BOX,
            zorder=5,
            ha="right",
            va="top",
            color=colour,
        )
    words.append(f"loss on day {loss}" if loss is not None else "no loss")
    if relapse is not None:
        words.append(f"relapse on day {relapse}")
    return ", ".join(words[:1]) + ": " + ", ".join(words[1:]) if len(words) > 1 else words[0]


def _b_cell_panel(ax: Axes, courses: list[Course], aplasia) -> bool:
    ax.set_ylabel("B cells (% of lymphocytes)")
    drew = False
    many = len(courses) > 1
    for i, c in enumerate(courses):
        days, values = c.series(B_CELLS)
        if not len(days):
            continue
        colour = course_colour(i)
        name = f"infusion {c.infusion}" if many and len({x.patient_id for x in courses}) == 1 else c.label
        ax.plot(
            days,
            values,
            color=colour,
            linestyle=COURSE_LINESTYLES[i % 4],
            marker=COURSE_MARKERS[i % 7],
            markersize=3.5,
            linewidth=1.2,
            label=name,
        )
        recovery = c.value("b_cell_recovery_day")
        if recovery is not None:
            at = values[days == recovery]
            ax.plot(
                [recovery],
                [at[0] if len(at) else 0],
                marker="^",
                markersize=8,
                color=colour,
                markeredgecolor="black",
                linestyle="none",
            )
            ax.annotate(
                f"B-cell recovery day {recovery}",
                (recovery, at[0] if len(at) else 0),
                xytext=(-4, 8),
                textcoords="offset points",
                fontsize=7,
                ha="right",
                color=colour,
            )
        drew = True
    if not drew:
        empty_note(ax, "no B-cell measurements")
        return False
    if aplasia:
        p, _ = aplasia
        ax.axhline(
            p.value, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1, label=f"B-cell aplasia below {p.value:g} {p.unit}"
        )
    else:
        ax.text(0.01, 0.9, NO_APLASIA_THRESHOLD, transform=ax.transAxes, fontsize=7, color="#555555")
    ax.set_ylim(bottom=0)
    return True
