"""The concordance of grading systems on the terminal."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from carscore.cli.console import literal


def _share(block: dict[str, Any]) -> str:
    if not block["n"]:
        return "–"
    return f"{block['count']}/{block['n']}  {block['rate']:.0%} ({block['ci_low']:.0%}–{block['ci_high']:.0%})"


def render_comparison(comparison: dict[str, Any], console: Console, family: str = "") -> None:
    what = f"{family}: " if family else ""
    title = f"{what}{comparison['n_courses']} courses compared, {comparison['n_excluded']} left out"
    head = Table(box=box.SIMPLE_HEAVY, title=title)
    head.add_column("all systems")
    head.add_column("courses", justify="right")
    head.add_row("same maximum grade", _share(comparison["same_max_grade"]))
    toxicity = family or "CRS"
    head.add_row(f"same {toxicity} diagnosis", _share(comparison["same_crs_diagnosis"]))
    head.add_row(f"{toxicity} in every system", _share(comparison["crs_in_every_system"]))
    console.print(head)
    reference = comparison["reference"]
    versus = Table(box=box.SIMPLE_HEAVY, title=f"each system against {reference} (courses with {toxicity} in either)")
    for name in ("system", "concordant", "lower", "higher"):
        versus.add_column(name)
    for system, block in comparison["versus_reference"].items():
        versus.add_row(literal(system), _share(block["concordant"]), _share(block["lower"]), _share(block["higher"]))
    console.print(versus)
    for system, block in comparison["versus_reference"].items():
        cross = Table(box=box.SIMPLE, title=f"maximum grade: {reference} (rows) against {system} (columns)")
        cross.add_column(reference)
        for g in range(6):
            cross.add_column(str(g), justify="right")
        for r, row in block["cross_table"].items():
            cross.add_row(r, *[str(row[str(g)]) for g in range(6)])
        console.print(cross)
