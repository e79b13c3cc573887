"""carscore report (contract section 7): one self-contained HTML file with the
cohort, the swimmer plot, every course and the rule sets used."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from carscore.cli.common import report_problems, start, usage
from carscore.cli.inputs import (
    ColumnOption,
    ConfidenceOption,
    FromOption,
    IgnoreUnknownOption,
    InfusionsOption,
    RulesOption,
    SystemsOption,
    TimezoneOption,
    read_input,
)
from carscore.cli.output import OutputError, say, write_file

HTML_SUFFIX = ".html"


def report(
    sources: Annotated[
        list[str], typer.Argument(help="CSV files and/or folders (as for cohort); - for stdin; with --from, the exports.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="REPORT.html", help="The HTML file to write (replaced only once complete)."),
    ] = None,
    rules: RulesOption = None,
    confidence: ConfidenceOption = 0.95,
    column: ColumnOption = None,
    ignore_unknown_columns: IgnoreUnknownOption = False,
    source_format: FromOption = None,
    infusions: InfusionsOption = None,
    timezone: TimezoneOption = None,
    systems: SystemsOption = None,
) -> None:
    """Write one self-contained HTML report: cohort rates, swimmer plot, every course with its figures, and the rule sets."""
    if output is None:
        raise usage(f"carscore report writes one HTML file: give -o REPORT{HTML_SUFFIX}")
    if output.suffix.lower() != HTML_SUFFIX:
        raise usage(f"the report is an HTML file: -o must end in {HTML_SUFFIX} (not '{output.name}')")
    from carscore.htmlreport import INSTALL_EXTRA, missing_extra

    missing = missing_extra()
    if missing:
        raise usage(f"carscore report needs {' and '.join(missing)}: {INSTALL_EXTRA}")
    stdin, engine = start(sources, output, rules, systems)
    intake = read_input(sources, engine, stdin, column, ignore_unknown_columns, source_format, infusions, timezone)

    from carscore.assess import assess_intake
    from carscore.cohort import cohort_of
    from carscore.htmlreport import build_report

    assessment = assess_intake(intake, engine)
    notes: list[str] = []
    page = build_report(assessment, cohort_of(assessment, confidence), sources, notes=notes)
    try:
        write_file(output, page.encode("utf-8"))
    except OutputError:
        report_problems(assessment)
        raise
    for note in notes:
        say(f"note: {note}")
    raise typer.Exit(report_problems(assessment))
