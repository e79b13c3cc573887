"""carscore plot (contract §7): one figure of a course, or the cohort's swimmer plot.

Where the figure goes: ``-o FILE.png|.svg|.pdf`` (the suffix names the format). Without
``-o`` (or with ``-o -``) PNG bytes go to standard output, but only when it is not a
terminal (``carscore plot ... > figure.png`` or a pipe): image bytes would garble a
terminal. A swimmer plot of several pages is one PDF (a page each) or numbered PNG/SVG
files (``swimmer-1.png``, ``swimmer-2.png``, ...).
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from carscore.cli.inputs import (
    ColumnOption,
    FromOption,
    IgnoreUnknownOption,
    InfusionsOption,
    RulesOption,
    SystemsOption,
    TimezoneOption,
)

INSTALL = "pip install 'carscore[plots]'"
FORMATS = (".png", ".svg", ".pdf")
LISTED_COURSES = 20


class Kind(str, Enum):
    timeline = "timeline"
    kinetics = "kinetics"
    counts = "counts"
    swimmer = "swimmer"


class Sort(str, Enum):
    relapse = "relapse"
    crs = "crs"
    patient = "patient"
    followup = "followup"
    input = "input"


def plot(
    sources: Annotated[list[str], typer.Argument(help="CSV files and/or folders (as for cohort); - for stdin.")],
    kind: Annotated[
        Kind,
        typer.Option(
            "--kind",
            help="timeline (grades, temperature, treatments of one course), kinetics (CAR copies and B cells), "
            "counts (ANC and platelets with ICAHT) or swimmer (every course).",
        ),
    ],
    patient: Annotated[str | None, typer.Option("--patient", metavar="ID", help="The patient whose course is drawn.")] = None,
    infusion: Annotated[
        int | None,
        typer.Option("--infusion", metavar="N", help="Which infusion of the patient (kinetics without it overlays every one)."),
    ] = None,
    sort: Annotated[
        Sort,
        typer.Option(
            "--sort", help="Swimmer lane order: relapse (time to relapse), crs (maximum CRS grade), patient, followup, input."
        ),
    ] = Sort.relapse,
    lanes_per_page: Annotated[
        int, typer.Option("--lanes-per-page", min=1, max=200, help="Swimmer lanes per page; more courses make more pages.")
    ] = 40,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE.png|.svg|.pdf",
            help="The image file; its suffix names the format. Without it, PNG goes to standard output when that is "
            "redirected or piped.",
        ),
    ] = None,
    rules: RulesOption = None,
    systems: SystemsOption = None,
    column: ColumnOption = None,
    ignore_unknown_columns: IgnoreUnknownOption = False,
    source_format: FromOption = None,
    infusions: InfusionsOption = None,
    timezone: TimezoneOption = None,
) -> None:
    """Draw a figure: one course's timeline, kinetics or counts, or the cohort's swimmer plot (PNG, SVG or PDF)."""
    from carscore.cli.common import report_problems, start, usage

    fmt = _format_of(output)
    if kind is Kind.swimmer and (patient is not None or infusion is not None):
        raise usage(
            "--patient and --infusion choose the course of a timeline, kinetics or counts figure; "
            "the swimmer plot shows every course"
        )
    _figures_module()
    stdin, engine = start(sources, output, rules, systems)

    from carscore.assess import assess_intake
    from carscore.cli.inputs import read_input

    intake = read_input(sources, engine, stdin, column, ignore_unknown_columns, source_format, infusions, timezone)
    assessment = assess_intake(intake, engine, reasons=False)
    figures = _figures_module()
    choices = figures.course_choices(assessment)
    if not choices:
        code = report_problems(assessment)
        from carscore.cli.output import say

        say("error: no course could be assessed, so there is nothing to draw")
        raise typer.Exit(max(code, 1))
    if kind is Kind.swimmer:
        drawings = figures.swimmer_drawings(assessment, sort.value, lanes_per_page)
    else:
        try:
            courses = pick_courses(choices, kind.value, patient, infusion)
        except Exception:
            report_problems(assessment)  # a course left out by bad rows is named before the choice fails
            raise
        drawings = [figures.course_drawing(kind.value, assessment, courses)]
    _write(figures, drawings, output, fmt)
    raise typer.Exit(report_problems(assessment))


def _figures_module() -> Any:
    """carscore.figures, or a usage error saying how to install matplotlib (the extra 'plots')."""
    try:
        import carscore.figures as figures
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "matplotlib":
            raise
        from carscore.cli.common import usage

        raise usage(f"figures need matplotlib, which is not installed; install it with: {INSTALL}") from None
    return figures


def _format_of(output: Path | None) -> str:
    from carscore.cli.common import usage
    from carscore.cli.output import check_stdout_usable

    if output is None or str(output) == "-":
        check_stdout_usable(output)
        if sys.stdout is not None and sys.stdout.isatty():
            raise usage("give -o FILE.png, FILE.svg or FILE.pdf; PNG goes to standard output only when it is redirected or piped")
        return "png"
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        from carscore.cli.console import printable

        raise usage(f"-o {printable(str(output))}: the file name must end in .png, .svg or .pdf (the image format)")
    return suffix[1:]


def course_words(choice: tuple[int, str, Any]) -> str:
    from carscore.cli.console import printable

    return f"{printable(choice[1])} infusion {choice[2]}"


def listed(choices: list[tuple[int, str, Any]]) -> str:
    shown = ", ".join(course_words(c) for c in choices[:LISTED_COURSES])
    more = len(choices) - LISTED_COURSES
    return shown + (f" and {more} more" if more > 0 else "")


def pick_courses(choices: list[tuple[int, str, Any]], kind: str, patient: str | None, infusion: int | None) -> list[int]:
    """The course ids a per-course figure draws: the one course of the input, or the course of
    --patient narrowed by --infusion; kinetics overlays every course of one patient."""
    from carscore.cli.common import usage
    from carscore.cli.console import printable

    found = choices
    if patient is not None:
        found = [c for c in found if c[1] == patient]
        if not found:
            raise usage(f"no assessed course of patient '{printable(patient)}'; the courses are: {listed(choices)}")
    if infusion is not None:
        narrowed = [c for c in found if c[2] == infusion]
        if not narrowed:
            whose = f"patient '{printable(patient)}'" if patient is not None else "any patient"
            raise usage(f"no infusion {infusion} of {whose} in the input; the courses are: {listed(found)}")
        found = narrowed
    if len(found) == 1:
        return [found[0][0]]
    if kind == "kinetics" and len({c[1] for c in found}) == 1:
        return [c[0] for c in found]  # one patient's infusions, overlaid
    if patient is not None:
        raise usage(f"patient '{printable(patient)}' has {len(found)} courses ({listed(found)}): give --infusion N")
    raise usage(f"the input holds {len(found)} courses: give --patient ID (and --infusion N); the courses are: {listed(found)}")


def _write(figures: Any, drawings: list[Any], output: Path | None, fmt: str) -> None:
    from carscore.cli.common import usage
    from carscore.cli.output import say, write, write_file

    if len(drawings) == 1:
        write(figures.image_bytes(drawings[0], fmt), output)
        return
    if fmt == "pdf" and output is not None:
        write_file(output, figures.pdf_pages(drawings))
        return
    if output is None or str(output) == "-":
        raise usage(
            f"the swimmer plot has {len(drawings)} pages: give -o FILE.pdf (a page each), -o FILE.png (numbered files), "
            "or a larger --lanes-per-page"
        )
    names = [output.with_name(f"{output.stem}-{i}{output.suffix}") for i in range(1, len(drawings) + 1)]
    for name, d in zip(names, drawings):
        write_file(name, figures.image_bytes(d, fmt))
    say(f"note: the swimmer plot has {len(drawings)} pages: {names[0].name} to {names[-1].name}")
