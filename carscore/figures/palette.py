"""Colours, hatches and words shared by every figure.

The Okabe–Ito palette (Okabe M, Ito K. Color Universal Design, 2008) stays
distinct for readers with the common colour-vision deficiencies; every grade
also carries its own hatch, so that a grey print still tells the grades apart.
"""

from __future__ import annotations

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

# grade 0 is drawn (assessed, no toxicity) in a neutral grey; "not assessable" is never a grade colour
GRADE_COLOURS = {
    0: "#BBBBBB",
    1: OKABE_ITO["sky_blue"],
    2: OKABE_ITO["orange"],
    3: OKABE_ITO["vermillion"],
    4: OKABE_ITO["reddish_purple"],
    5: OKABE_ITO["black"],
}
GRADE_HATCHES = {0: "", 1: "", 2: "..", 3: "//", 4: "xx", 5: ""}
NOT_ASSESSABLE_HATCH = "////"
NOT_ASSESSABLE_EDGE = "#999999"

# one colour per course when several are overlaid
COURSE_COLOURS = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["black"],
)
COURSE_LINESTYLES = ("-", "--", "-.", ":")
COURSE_MARKERS = ("o", "s", "D", "^", "v", "P", "X")

# marrow response on the swimmer lanes
RESPONSE_COLOURS = {
    "CR": OKABE_ITO["bluish_green"],
    "CRi": OKABE_ITO["sky_blue"],
    "NR": OKABE_ITO["orange"],
    "relapse": OKABE_ITO["vermillion"],
}
RESPONSE_UNKNOWN = "#DDDDDD"

THRESHOLD_COLOUR = "#444444"
DAY_ZERO_COLOUR = "#666666"
SHADE_COLOUR = "#E5E5E5"
DAY_LINE_COLOUR = "#EEEEEE"

FONT = {
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
}


def course_colour(i: int) -> str:
    return COURSE_COLOURS[i % len(COURSE_COLOURS)]


def number_text(value: float) -> str:
    """112000 -> '112 000' (a thin space groups thousands, as clinical reports print them)."""
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", "\u2009")
    return f"{value:g}"
