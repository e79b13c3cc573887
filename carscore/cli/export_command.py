"""carscore export (contract §6, outputs.md): the ADaM dataset ADCART, the
CIBMTR 4100 and EBMT MED-A toxicity rows, and the cohort toxicity table.

The format is set by the output's extension; without -o, CSV (table2:
Markdown) goes to stdout. Dates come from --infusions (with --from, the
import's infusion file). A course without an infusion date gets blank dates
and a warning (exit 0); a bad row of the infusions file is an input error
(contract §3: exit 1, the rest still exported).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from carscore.cli.common import report_problems, start, usage
from carscore.cli.guard import EXIT_DATA, EXIT_OK
from carscore.cli.inputs import (
    ColumnOption,
    FromOption,
    IgnoreUnknownOption,
    OutputOption,
    RulesOption,
    SystemsOption,
    TimezoneOption,
    read_input,
)
from carscore.cli.output import refuse_input_as_output, say, write


class Shape(str, Enum):
    adam = "adam"
    cibmtr = "cibmtr"
    ebmt = "ebmt"
    table2 = "table2"


# the formats each shape has, by extension; the first is the one for stdout
FORMATS = {
    Shape.adam: ("csv", "parquet", "xpt"),
    Shape.cibmtr: ("csv", "parquet"),
    Shape.ebmt: ("csv", "parquet"),
    Shape.table2: ("md", "csv", "html"),
}


def output_format(shape: Shape, output: Path | None) -> str:
    if output is None or str(output) == "-":
        return FORMATS[shape][0]
    extension = output.suffix.lower().lstrip(".")
    if extension not in FORMATS[shape]:
        allowed = ", ".join(f".{e}" for e in FORMATS[shape])
        raise usage(f"--to {shape.value} writes {allowed}; {output} has {('.' + extension) if extension else 'no extension'}")
    return extension


def export(
    sources: Annotated[
        list[str], typer.Argument(help="CSV files and/or folders (as for cohort); - for stdin; with --from, the exports.")
    ],
    to: Annotated[
        Shape, typer.Option("--to", help="adam (ADCART), cibmtr (4100), ebmt (MED-A) or table2.", case_sensitive=False)
    ],
    infusions: Annotated[
        Path | None,
        typer.Option(
            "--infusions",
            help="CSV of patient_id, infusion, infusion_datetime (ISO 8601; a date alone is allowed): the dates. "
            "With --from, the import's infusion file.",
        ),
    ] = None,
    systems: SystemsOption = None,
    studyid: Annotated[str | None, typer.Option("--studyid", metavar="ID", help="STUDYID of the ADaM records.")] = None,
    output: OutputOption = None,
    rules: RulesOption = None,
    column: ColumnOption = None,
    ignore_unknown_columns: IgnoreUnknownOption = False,
    source_format: FromOption = None,
    timezone: TimezoneOption = None,
) -> None:
    """Export for registries, CDISC and papers: ADaM ADCART, CIBMTR/EBMT toxicity rows, or the cohort toxicity table."""
    fmt = output_format(to, output)
    if fmt == "xpt":
        from carscore.export.xpt import require_pyreadstat

        require_pyreadstat()
    stdin, engine = start(sources, output, rules, systems)
    if infusions is not None:
        refuse_input_as_output(output, [str(infusions)])
    intake = read_input(sources, engine, stdin, column, ignore_unknown_columns, source_format, infusions, timezone)

    from carscore.assess import assess_intake

    assessment = assess_intake(intake, engine, reasons=to is Shape.adam)
    date_problems: list[Any] = []
    warnings: list[str] = []
    if to is Shape.table2:
        data = _table2(assessment, fmt)
    else:
        from carscore.export.dates import course_dates, no_dates

        if infusions is None:
            dates = no_dates(assessment)
            warnings.append("no --infusions file given: every date is left blank")
        else:
            dates = course_dates(assessment, infusions, timezone, already_read=source_format is not None)
        date_problems, warnings = dates.problems, warnings + dates.warnings
        data = _adam(assessment, dates, studyid or "", fmt) if to is Shape.adam else _registry(assessment, dates, to.value, fmt)
    try:
        write(data, output)
    finally:
        code = report_problems(assessment)
        for problem in date_problems:
            say(f"error: {problem}")
        for warning in warnings:
            say(f"warning: {warning}")
    raise typer.Exit(EXIT_DATA if date_problems else code if code else EXIT_OK)


def _csv(table: Any) -> bytes:
    from carscore.report import csv_text

    return csv_text(table).encode("utf-8")


def _parquet(table: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    table.write_parquet(buffer)
    return buffer.getvalue()


def _adam(assessment: Any, dates: Any, studyid: str, fmt: str) -> bytes:
    from carscore.export.adam import DATASET, DATASET_LABEL, LABELS, adcart, adcart_csv_table

    table = adcart(assessment, dates, studyid)
    if fmt == "xpt":
        from carscore.export.xpt import xpt_bytes

        return xpt_bytes(table, LABELS, DATASET, DATASET_LABEL, ["ADT"])
    return _parquet(table) if fmt == "parquet" else _csv(adcart_csv_table(table))


def _registry(assessment: Any, dates: Any, registry: str, fmt: str) -> bytes:
    from carscore.export.registry import registry_rows

    table = registry_rows(assessment, dates, registry)
    return _parquet(table) if fmt == "parquet" else _csv(table)


def _table2(assessment: Any, fmt: str) -> bytes:
    from carscore.cohort import cohort_of
    from carscore.export.table2 import table2
    from carscore.export.table2_formats import html, long_table, markdown

    table = table2(assessment, cohort_of(assessment))
    if fmt == "csv":
        return _csv(long_table(table))
    return (html(table) if fmt == "html" else markdown(table)).encode("utf-8")
