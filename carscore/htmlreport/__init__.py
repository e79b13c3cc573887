"""``carscore report``: one self-contained HTML file (contract section 7).

The page holds everything it shows: its stylesheet inline, its figures as
inline SVG, no script, and no font, image or stylesheet fetched from
anywhere, so that it opens offline and can be archived with a study. It is
rendered by a Jinja2 template with autoescaping: patient ids, file names and
reasons are data and are always escaped.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# what the report needs beyond carscore itself (the "plots" extra)
EXTRA_MODULES = ("matplotlib", "jinja2")
INSTALL_EXTRA = "pip install 'carscore[plots]'"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def missing_extra() -> list[str]:
    """The modules of the "plots" extra that cannot be imported."""
    import importlib

    missing = []
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def build_report(
    a: Any,
    stats: dict[str, Any],
    inputs: list[str] | None = None,
    written: datetime | None = None,
    figures: bool = True,
    notes: list[str] | None = None,
) -> str:
    """The report of an assessment as one HTML document. ``stats`` is
    ``carscore.cohort.cohort_of(a)``; ``inputs`` names the files given;
    ``figures=False`` leaves the figures out (a quicker page, for tests).
    A figure that could not be drawn is said in the page, and in ``notes``."""
    from carscore import report
    from carscore.htmlreport import drawings
    from carscore.htmlreport.sections import page

    when = (written or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    # the figures are drawn (in other processes, for a cohort) while the rest of the page is built
    drawing = drawings.start(a, [s["_course"] for s in report.summary_rows(a)]) if figures else None
    try:
        content = page(a, stats, list(inputs or []), when.isoformat().replace("+00:00", "Z"))
    except BaseException:
        if drawing is not None:
            drawings.abandon(drawing)
        raise
    if drawing is not None:
        drawings.finish(drawing, content)
    if notes is not None:
        notes.extend(content.figure_notes)
    return render(content)


def render(content: Any) -> str:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    environment.filters["cells"] = cells_html
    return environment.get_template("report.html.j2").render(page=content)


def cells_html(cells: Any, tag: str = "td") -> Any:
    """Table cells (values.Cell, or a list of them) as markup, their text and
    title escaped: a filter, because a template macro called for each of a
    cohort's hundreds of thousands of cells would take seconds."""
    from markupsafe import Markup, escape

    out = []
    for c in [cells] if hasattr(cells, "text") else cells:
        css = f' class="{escape(c.css)}"' if c.css else ""
        title = f' title="{escape(c.title)}"' if c.title else ""
        out.append(f"<{tag}{css}{title}>{escape(c.text)}</{tag}>")
    return Markup("".join(out))
