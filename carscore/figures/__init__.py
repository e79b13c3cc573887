"""Figures of a course and of a cohort (contract §7), drawn on matplotlib Figures without pyplot.

    course_choices(a)                 the courses to choose from: (course id, patient_id, infusion)
    course_drawing(kind, a, courses)  timeline | kinetics | counts of one course (kinetics: several overlaid)
    swimmer_drawings(a, sort, lanes_per_page)   the cohort's swimmer plot, one Drawing per page
    svg_text(d, id_prefix=None)       inline SVG markup, its <title> the alt text, its element ids its own
    image_bytes(d, fmt)               PNG, SVG or PDF bytes of one Drawing

Importing this package needs matplotlib (the optional extra ``carscore[plots]``).
"""

from __future__ import annotations

from carscore.assess import Assessment
from carscore.compile import COURSE
from carscore.figures.counts import counts_drawing
from carscore.figures.course_data import course_of, course_table
from carscore.figures.drawing import Drawing
from carscore.figures.kinetics import kinetics_drawing
from carscore.figures.svg import image_bytes, pdf_pages, svg_text
from carscore.figures.swimmer import SORTS, swimmer_drawings
from carscore.figures.timeline import timeline_drawing

COURSE_KINDS = ("timeline", "kinetics", "counts")
KINDS = (*COURSE_KINDS, "swimmer")

__all__ = [
    "COURSE_KINDS",
    "KINDS",
    "SORTS",
    "Drawing",
    "course_choices",
    "course_drawing",
    "image_bytes",
    "pdf_pages",
    "svg_text",
    "swimmer_drawings",
]


def course_choices(a: Assessment) -> list[tuple[int, str, int]]:
    """(course id, patient_id, infusion) of every assessed course, in input order."""
    return [(int(r[COURSE]), str(r["patient_id"]), r["infusion"]) for r in course_table(a).iter_rows(named=True)]


def course_drawing(kind: str, a: Assessment, courses: list[int]) -> Drawing:
    """One course's figure; ``kinetics`` overlays every course given, the others take exactly one."""
    if kind not in COURSE_KINDS:
        raise ValueError(f"unknown course figure '{kind}'; known: {', '.join(COURSE_KINDS)}")
    if not courses:
        raise ValueError("no course to draw")
    if kind != "kinetics" and len(courses) != 1:
        raise ValueError(f"a {kind} figure shows one course, not {len(courses)}")
    chosen = [course_of(a, int(c)) for c in courses]
    if kind == "kinetics":
        return kinetics_drawing(a, chosen)
    if kind == "timeline":
        return timeline_drawing(a, chosen[0])
    return counts_drawing(a, chosen[0])
