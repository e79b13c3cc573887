"""The cohort's swimmer plot: one lane per course from infusion to its last data, paginated."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from carscore.assess import Assessment
from carscore.compile import COURSE, DAY
from carscore.figures.course_data import course_table
from carscore.figures.drawing import Drawing, drawn, margins, mark_day_zero, new_figure, panel_title
from carscore.figures.palette import GRADE_COLOURS, OKABE_ITO, RESPONSE_COLOURS, RESPONSE_UNKNOWN
from carscore.presentation import COHORT_RATES

# severe episodes are those the cohort counts as grade >= 3 (presentation.COHORT_RATES)
SEVERE_GRADE = dict(COHORT_RATES)["grade3plus"]
SORTS = {
    "relapse": "time to relapse",
    "crs": "maximum CRS grade",
    "patient": "patient",
    "followup": "follow-up",
    "input": "input order",
}
LANE_INCHES = 0.24
MARKS = {
    "relapse": ("X", OKABE_ITO["vermillion"], "relapse"),
    "car_loss": ("v", OKABE_ITO["blue"], "CAR loss"),
    "b_cell_recovery": ("^", OKABE_ITO["yellow"], "B-cell recovery"),
    "crs": ("s", GRADE_COLOURS[3], f"CRS grade ≥ {SEVERE_GRADE}"),
    "icans": ("D", GRADE_COLOURS[4], f"ICANS grade ≥ {SEVERE_GRADE}"),
    "death": ("P", OKABE_ITO["black"], "death"),
    "ongoing": (">", "#333333", "data end without relapse or death"),
}


@dataclass
class Lane:
    course: int
    patient_id: str
    infusion: int | None
    last_day: float
    relapse: float | None
    car_loss: float | None
    b_cell_recovery: float | None
    crs_max: int | None
    death: float | None = None
    responses: list[tuple[float, str]] = field(default_factory=list)  # (day, response) of each marrow assessment
    crs_severe: list[float] = field(default_factory=list)
    icans_severe: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.patient_id} · inf {self.infusion}" if self.infusion is not None else self.patient_id


def swimmer_drawings(a: Assessment, sort: str = "relapse", lanes_per_page: int = 40) -> list[Drawing]:
    """One Drawing per page of at most ``lanes_per_page`` lanes; a patient's courses stay together
    on one page (unless a patient alone has more courses than a page holds)."""
    if sort not in SORTS:
        raise ValueError(f"unknown swimmer order '{sort}'; known: {', '.join(SORTS)}")
    if lanes_per_page < 1:
        raise ValueError("lanes_per_page must be at least 1")
    groups = _sorted_groups(_lanes(a), sort)
    pages: list[list[Lane]] = [[]]
    for group in groups:
        if pages[-1] and len(pages[-1]) + len(group) > lanes_per_page:
            pages.append([])
        for lane in group:
            if len(pages[-1]) >= lanes_per_page:
                pages.append([])
            pages[-1].append(lane)
    return [_page(lanes, sort, i + 1, len(pages)) for i, lanes in enumerate(pages)]


def _value(row: dict, key: str) -> float | None:
    v = row.get(key)
    return None if v is None else float(v)


def _lanes(a: Assessment) -> list[Lane]:
    days = a.days
    summaries = {r[COURSE]: r for r in a.summaries.iter_rows(named=True)}
    last = dict(days.group_by(COURSE).agg(pl.col(DAY).max()).iter_rows())
    responses: dict[int, list[tuple[float, str]]] = {}
    if "bm_response" in days.columns:
        for c, d, r in (
            days.filter(pl.col("bm_response").is_not_null() & (pl.col(DAY) > 0)).select(COURSE, DAY, "bm_response").iter_rows()
        ):
            responses.setdefault(c, []).append((float(d), str(r)))
    severe: dict[str, dict[int, list[float]]] = {}
    for column in ("crs_grade", "icans_grade"):
        severe[column] = {}
        if column in days.columns:
            for c, d in days.filter(pl.col(column) >= SEVERE_GRADE).select(COURSE, DAY).iter_rows():
                severe[column].setdefault(c, []).append(float(d))
    deaths: dict[int, float] = {}
    if "death_cause" in days.columns:
        died = days.filter(pl.col("death_cause").is_not_null()).group_by(COURSE).agg(pl.col(DAY).min())
        deaths = {c: float(d) for c, d in died.iter_rows()}
    lanes = []
    for row in course_table(a).iter_rows(named=True):
        c = row[COURSE]
        s = summaries.get(c, {})
        crs = s.get("crs_max_grade")
        lanes.append(
            Lane(
                course=int(c),
                patient_id=str(row["patient_id"]),
                infusion=row["infusion"],
                last_day=max(float(last.get(c, 0) or 0), 0.0),
                relapse=_value(s, "bm_relapse_day"),
                car_loss=_value(s, "car_loss_day"),
                b_cell_recovery=_value(s, "b_cell_recovery_day"),
                crs_max=None if crs is None else int(crs),
                death=deaths.get(c),
                responses=responses.get(c, []),
                crs_severe=severe["crs_grade"].get(c, []),
                icans_severe=severe["icans_grade"].get(c, []),
            )
        )
    return lanes


def _sorted_groups(lanes: list[Lane], sort: str) -> list[list[Lane]]:
    """Lanes grouped by patient (infusions in order), groups in the order asked for."""
    groups: dict[str, list[Lane]] = {}
    for lane in lanes:
        groups.setdefault(lane.patient_id, []).append(lane)
    ordered = [sorted(g, key=lambda x: (x.infusion is None, x.infusion or 0)) for g in groups.values()]
    never = float("inf")
    keys = {
        # relapsed patients first, the earliest relapse first; then the rest by longest follow-up
        "relapse": lambda g: (min((x.relapse for x in g if x.relapse is not None), default=never), -max(x.last_day for x in g)),
        "crs": lambda g: (-max((x.crs_max for x in g if x.crs_max is not None), default=-1), g[0].patient_id),
        "patient": lambda g: g[0].patient_id,
        "followup": lambda g: -sum(x.last_day for x in g),
        "input": lambda g: 0,
    }
    return sorted(ordered, key=keys[sort])


@drawn
def _page(lanes: list[Lane], sort: str, page: int, pages: int) -> Drawing:
    n = len(lanes)
    height = max(2.6, 1.6 + LANE_INCHES * n)
    figure = new_figure(8.0, height)
    # room on the left for the longest lane label (about 0.065 in per character at 8 pt)
    left = 0.3 + 0.065 * max((len(lane.label) for lane in lanes), default=8)
    ax = figure.subplots(gridspec_kw=margins(8.0, height, left=left, top=0.4, bottom=1.1))
    y = np.arange(n, dtype=float)[::-1] if n else np.empty(0)
    _draw_lanes(ax, lanes, y)
    ax.set_yticks(y, [lane.label for lane in lanes])
    ax.set_ylim(-0.7, n - 0.3)
    right = max([lane.last_day for lane in lanes] + [1.0])
    ax.set_xlim(-max(2.0, right * 0.04), right * 1.06 + 1)
    mark_day_zero(ax)
    ax.set_xlabel("Days since CAR-T infusion (day 0)")
    ax.grid(axis="x", color="#EEEEEE", linewidth=0.6)
    ax.set_axisbelow(True)
    of = f" (page {page} of {pages})" if pages > 1 else ""
    title = f"Courses from infusion to last data, by {SORTS[sort]}{of}"
    panel_title(ax, title)
    handles = [Patch(facecolor=colour, label=f"marrow {name}") for name, colour in RESPONSE_COLOURS.items()]
    handles.append(Patch(facecolor=RESPONSE_UNKNOWN, label="no marrow response yet"))
    handles += [Line2D([], [], marker=m, color=c, linestyle="none", label=label) for m, c, label in MARKS.values()]
    figure.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncols=5, frameon=False, fontsize=7)
    return Drawing(figure, title, _alt(lanes, sort, page, pages))


def _draw_lanes(ax: Axes, lanes: list[Lane], y: np.ndarray) -> None:
    ax.barh(y, [lane.last_day for lane in lanes], left=0, height=0.55, color=RESPONSE_UNKNOWN, gid="lanes")
    segments: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for lane, at in zip(lanes, y):
        # each marrow result holds until the next marrow (or the lane's end)
        for (day, response), nxt in zip(lane.responses, [r[0] for r in lane.responses[1:]] + [lane.last_day]):
            ys, lefts, widths = segments.setdefault(response, ([], [], []))
            ys.append(at)
            lefts.append(day)
            widths.append(max(nxt - day, 0.6))
    for response, (ys, lefts, widths) in segments.items():
        ax.barh(ys, widths, left=lefts, height=0.55, color=RESPONSE_COLOURS.get(response, "#999999"), gid=f"response-{response}")
    _marks(ax, "crs", [(d, at + 0.33) for lane, at in zip(lanes, y) for d in lane.crs_severe], 4)
    _marks(ax, "icans", [(d, at - 0.33) for lane, at in zip(lanes, y) for d in lane.icans_severe], 4)
    _marks(ax, "car_loss", [(lane.car_loss, at) for lane, at in zip(lanes, y) if lane.car_loss is not None], 7)
    _marks(
        ax, "b_cell_recovery", [(lane.b_cell_recovery, at) for lane, at in zip(lanes, y) if lane.b_cell_recovery is not None], 7
    )
    _marks(ax, "relapse", [(lane.relapse, at) for lane, at in zip(lanes, y) if lane.relapse is not None], 9)
    _marks(ax, "death", [(lane.death, at) for lane, at in zip(lanes, y) if lane.death is not None], 8)
    ended = [(lane.last_day + 0.8, at) for lane, at in zip(lanes, y) if lane.relapse is None and lane.death is None]
    _marks(ax, "ongoing", ended, 7)
    # a later infusion of the same patient is linked to the lane above it
    links_x, links_y = [], []
    for i in range(1, len(lanes)):
        if lanes[i].patient_id == lanes[i - 1].patient_id:
            links_x += [-0.8, -0.8, None]
            links_y += [y[i - 1], y[i], None]
    if links_x:
        ax.plot(links_x, links_y, color="#333333", linewidth=1.2, marker="_", markersize=5, gid="second-infusion-links")


def _marks(ax: Axes, kind: str, points: list[tuple[float, float]], size: float) -> None:
    if not points:
        return
    marker, colour, _ = MARKS[kind]
    xs, ys = zip(*points)
    ax.plot(
        xs,
        ys,
        linestyle="none",
        marker=marker,
        color=colour,
        markersize=size,
        markeredgecolor="black",
        markeredgewidth=0.4,
        gid=f"mark-{kind}",
        zorder=3,
    )


def _alt(lanes: list[Lane], sort: str, page: int, pages: int) -> str:
    of = f" (page {page} of {pages})" if pages > 1 else ""
    relapsed = [lane for lane in lanes if lane.relapse is not None]
    severe = sum(1 for lane in lanes if lane.crs_severe or lane.icans_severe)
    parts = [f"{len(relapsed)} relapse{'s' if len(relapsed) != 1 else ''}"]
    if relapsed:
        parts[-1] += " (" + ", ".join(f"{lane.label} day {lane.relapse:g}" for lane in relapsed[:10]) + ")"
    parts.append(f"{sum(1 for lane in lanes if lane.car_loss is not None)} with CAR loss")
    parts.append(f"{sum(1 for lane in lanes if lane.b_cell_recovery is not None)} with B-cell recovery")
    parts.append(f"{severe} with grade ≥ {SEVERE_GRADE} CRS or ICANS")
    died = sum(1 for lane in lanes if lane.death is not None)
    if died:
        parts.append(f"{died} death{'s' if died != 1 else ''}")
    ongoing = sum(1 for lane in lanes if lane.relapse is None and lane.death is None)
    parts.append(f"{ongoing} whose data end without relapse or death")
    longest = max((lane.last_day for lane in lanes), default=0)
    return (
        f"Swimmer plot of {len(lanes)} course{'s' if len(lanes) != 1 else ''}{of}, one lane each from infusion to the last day "
        f"with data (longest {longest:g} days), sorted by {SORTS[sort]}: " + "; ".join(parts) + "."
    )
