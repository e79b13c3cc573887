"""The report's figures (carscore.figures draws them), as inline SVG.

A course's three figures take matplotlib about a quarter of a second; a
cohort's courses are therefore shared among worker processes, one per
processor (carscore.htmlreport.worker), which draw while this process builds
the rest of the page and draws the swimmer plot. A course a worker could not
draw is drawn again here, and a figure that cannot be drawn at all is named
in the page and the report goes on without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carscore.htmlreport.svgmarkup import SharedMarkup, inline_svg

COURSE_KINDS = ("timeline", "kinetics", "counts")
SWIMMER_SORT = "relapse"
LANES_PER_PAGE = 40
# below this many courses, starting worker processes costs more than it saves
COURSES_FOR_WORKERS = 12


@dataclass
class InlineFigure:
    kind: str
    title: str
    alt: str
    svg: str  # markup, placed in the page as it is


# (course id, kind) -> the figure, or why it could not be drawn
Drawn = dict[tuple[int, str], "InlineFigure | str"]


def draw(a: Any, page: Any, workers: int | None = None) -> None:
    """Add the swimmer plot and each course's figures to ``page``; what could
    not be drawn is said in ``page.figure_notes``."""
    finish(start(a, [c.course_id for c in page.courses], workers), page)


@dataclass
class Worker:
    process: subprocess.Popen
    courses: list[int]
    result: Path


@dataclass
class Drawing:
    """Figures on their way: the courses handed to worker processes, if any."""

    a: Any
    courses: list[int]
    figures: Any  # the carscore.figures module, or None when it cannot be loaded
    why_not: str = ""  # why it cannot be loaded
    folder: tempfile.TemporaryDirectory | None = None  # the workers' jobs and results
    workers: list[Worker] = field(default_factory=list)


def start(a: Any, courses: list[int], workers: int | None = None) -> Drawing:
    """Hand the courses' figures to worker processes (when there are enough
    courses to pay for starting them), so that they draw while this process
    builds the rest of the page."""
    try:
        from carscore import figures
    except Exception as exc:  # the report is still worth having without its figures
        return Drawing(a, courses, None, f"{type(exc).__name__}: {exc}")
    drawing = Drawing(a, courses, figures)
    wanted = workers if workers is not None else (processors() if len(courses) >= COURSES_FOR_WORKERS else 1)
    if wanted > 1 and courses:
        try:
            _start_workers(drawing, min(wanted, len(courses)))
        except Exception:  # no process can be started, or the data cannot be handed over: all is drawn here
            abandon(drawing)
            drawing.workers = []
    return drawing


def finish(drawing: Drawing, page: Any) -> None:
    """Draw the swimmer plot here, collect the workers' figures (a course no
    worker drew is drawn here), and share the figures' patterns and styles."""
    a, figures = drawing.a, drawing.figures
    if figures is None:
        page.figure_notes.append(f"no figure could be drawn: carscore.figures cannot be loaded ({drawing.why_not})")
        return
    drawn: Drawn = {}
    try:
        _swimmer(figures, a, page)
        if not drawing.workers:
            drawn.update(draw_courses(drawing.courses, a))
        for worker in drawing.workers:
            drawn.update(_collect(worker))
    except BaseException:
        abandon(drawing)
        raise
    abandon(drawing)
    shared = SharedMarkup()
    for fig in page.swimmer:
        fig.svg = shared.take(fig.svg)
    for course in page.courses:
        for kind in COURSE_KINDS:
            result = drawn.get((course.course_id, kind))
            if not isinstance(result, InlineFigure):  # not drawn by a worker, or failed there: once more here
                result = draw_courses([course.course_id], a, (kind,))[(course.course_id, kind)]
            if isinstance(result, InlineFigure):
                result.svg = shared.take(result.svg)
                course.figures.append(result)
            else:
                page.figure_notes.append(f"{course.title}: the {kind} figure could not be drawn ({result})")
    page.figure_definitions = shared.definitions()
    page.figure_styles = shared.stylesheet()


def abandon(drawing: Drawing) -> None:
    """Stop the workers still drawing (Ctrl-C, a failure elsewhere, or done) and
    remove their files."""
    for worker in drawing.workers:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()
    if drawing.folder is not None:
        drawing.folder.cleanup()
        drawing.folder = None


def _swimmer(figures: Any, a: Any, page: Any) -> None:
    if not page.courses:  # no course, no swimmer plot: the page says that no course could be assessed
        return
    try:
        drawings = figures.swimmer_drawings(a, sort=SWIMMER_SORT, lanes_per_page=LANES_PER_PAGE)
        page.swimmer = [_inline(figures, "swimmer", d, f"s{i}") for i, d in enumerate(drawings, start=1)]
    except Exception as exc:
        page.figure_notes.append(f"the swimmer plot could not be drawn ({type(exc).__name__}: {exc})")


def processors() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _inline(figures: Any, kind: str, drawing: Any, prefix: str) -> InlineFigure:
    return InlineFigure(kind, drawing.title, drawing.alt, inline_svg(figures.svg_text(drawing), prefix, drawing.alt))


def draw_courses(courses: list[int], a: Any, kinds: tuple[str, ...] = COURSE_KINDS) -> Drawn:
    """The figures of these courses: each an InlineFigure, or why it could not be drawn."""
    from carscore import figures

    out: Drawn = {}
    for course in courses:
        for kind in kinds:
            try:
                out[(course, kind)] = _inline(figures, kind, figures.course_drawing(kind, a, [course]), f"c{course}{kind[0]}")
            except Exception as exc:
                out[(course, kind)] = f"{type(exc).__name__}: {exc}"
    return out


# --- worker processes ------------------------------------------------------------------


def _start_workers(drawing: Drawing, count: int) -> None:
    import pickle

    import carscore

    a = drawing.a
    drawing.folder = tempfile.TemporaryDirectory(prefix="carscore-report-")
    folder = Path(drawing.folder.name)
    # what the figures read of an assessment (the compiled engine cannot be pickled)
    shared = {"days": a.days, "summaries": a.summaries, "intake": a.intake, "rulesets": a.rulesets}
    environment = dict(os.environ)
    # the workers import this carscore, wherever it was imported from
    package_parent = str(Path(carscore.__file__).resolve().parent.parent)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, environment.get("PYTHONPATH", "")) if p)
    job = folder / "job.pickle"
    with open(job, "wb") as fh:
        pickle.dump(shared, fh, protocol=pickle.HIGHEST_PROTOCOL)
    for n in range(count):
        share = drawing.courses[n::count]
        result = folder / f"result{n}.pickle"
        with open(folder / f"worker{n}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "carscore.htmlreport.worker", str(job), str(result), ",".join(map(str, share))],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=environment,
            )
        drawing.workers.append(Worker(process, share, result))


def _wait(process: subprocess.Popen) -> int:
    """The process's exit code, waited for in short steps: a wait in one blocking
    call would not let Ctrl-C through until the worker ends (polars' SIGINT
    handler restarts the call)."""
    while True:
        try:
            return process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue


def _collect(worker: Worker) -> Drawn:
    """A worker's figures; nothing when it failed (its courses are then drawn here)."""
    import pickle

    if _wait(worker.process) != 0 or not worker.result.exists():
        return {}
    try:
        with open(worker.result, "rb") as fh:
            return pickle.load(fh)
    except (OSError, EOFError, pickle.UnpicklingError):
        return {}
