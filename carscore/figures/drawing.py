"""The Drawing (a figure with its title and alt text) and what every figure shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from carscore.figures.palette import DAY_LINE_COLOUR, DAY_ZERO_COLOUR, FONT


@dataclass
class Drawing:
    figure: Figure
    title: str  # the figure's title in clinical words
    alt: str  # a sentence saying what the figure shows, with the key values


@contextmanager
def figure_style() -> Iterator[None]:
    """The figures' fonts, set only while a figure is drawn (never left in matplotlib's settings)."""
    with matplotlib.rc_context(FONT):
        yield


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def margins(
    width: float, height: float, left: float = 0.85, right: float = 0.2, top: float = 0.45, bottom: float = 0.5, gap: float = 0.25
) -> dict[str, float]:
    """Fixed margins in inches, as the fractions a GridSpec takes: a layout engine would measure
    every label of every figure, several times slower for a report of hundreds of figures."""
    return {
        "left": left / width,
        "right": 1 - right / width,
        "top": 1 - top / height,
        "bottom": bottom / height,
        "hspace": gap,
    }


def drawn(make: Callable[..., Drawing]) -> Callable[..., Drawing]:
    """Draw inside the figures' style."""

    def run(*args: Any, **kwargs: Any) -> Drawing:
        with figure_style():
            return make(*args, **kwargs)

    run.__name__ = make.__name__
    run.__doc__ = make.__doc__
    return run


def panel_title(ax: Axes, title: str) -> None:
    """The figure's title over the top left of its first panel. Placed, not laid out: an axes
    title is measured against every tick label at each drawing."""
    box = ax.get_position()
    figure = ax.get_figure()
    lift = 0.06 / figure.get_figheight()
    figure.text(box.x0, box.y1 + lift, title, ha="left", va="bottom", fontsize=FONT["axes.titlesize"])


def mark_day_zero(ax: Axes, label: bool = False) -> None:
    """The infusion day, on every panel with days across."""
    ax.axvline(0, color=DAY_ZERO_COLOUR, linestyle="--", linewidth=0.9, zorder=1, label="day 0 (infusion)" if label else None)


def empty_note(ax: Axes, text: str) -> None:
    """A panel with nothing to draw says why, in place of empty axes."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#555555", fontsize=9)
    ax.set_yticks([])


def day_axis(ax: Axes, first: float, last: float) -> None:
    pad = max(1.0, (last - first) * 0.02)
    ax.set_xlim(min(first, 0) - pad, max(last, 0) + pad)


def stacked_day_axes(figure: Figure, ratios: list[float], layout: dict[str, float]) -> list[Axes]:
    """Panels stacked over one day axis (finished by ``finish_day_axes``)."""
    return list(figure.subplots(len(ratios), 1, height_ratios=ratios, gridspec_kw=layout))


def finish_day_axes(axes: list[Axes], first: float, last: float) -> None:
    """One day range on every panel, day labels on the lowest only, and light day lines across all.
    The upper panels carry no ticks of their own: tick objects are most of a figure's drawing time,
    and a report draws hundreds of figures."""
    pad = max(1.0, (last - first) * 0.02)
    low, high = min(first, 0) - pad, max(last, 0) + pad
    days = [d for d in MaxNLocator(nbins=10, integer=True, steps=[1, 2, 5, 10]).tick_values(low, high) if low <= d <= high]
    for ax in axes:
        ax.set_xlim(low, high)
        ax.vlines(days, 0, 1, transform=ax.get_xaxis_transform(), colors=DAY_LINE_COLOUR, linewidth=0.6, zorder=0)
    for ax in axes[:-1]:
        ax.xaxis.set_major_locator(NullLocator())
        ax.xaxis.set_minor_locator(NullLocator())
    axes[-1].set_xticks(days)
    axes[-1].set_xlabel("Days since CAR-T infusion (day 0)")
