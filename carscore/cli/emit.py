"""Writing a grading command's result: JSON (indented for a person at a
terminal, compact and encoded by polars otherwise), CSV, Parquet, or the
table; then every problem named on stderr, and the exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from carscore.cli.common import report_problems, usage
from carscore.cli.inputs import Format
from carscore.cli.output import OutputError, indented, json_bytes, stdout_errors, write, write_file

AllOption = Annotated[bool, typer.Option("--all", help="With the table format: show every course, however many.")]
# the table format shows a screenful of courses: each course of grade is a table of its days
GRADE_TABLE_COURSES = 10


def cohort_table_courses() -> int:
    """A screenful of the cohort's course table (one line a course)."""
    import shutil

    return max(20, shutil.get_terminal_size((100, 50)).lines - 5)


def emit(
    assessment: Any,
    fmt: Format,
    output: Path | None,
    include_days: bool,
    cohort: dict | None,
    table_renderer: Callable[[Any, Any], None],
    day_output: Any = None,
) -> None:
    """Write the result; then name every problem on stderr and exit 0 or 1. The
    problems are named even when the result cannot be written (exit 2 then).
    ``day_output``: the days already gathered from the chunks (chunked.assess_in_chunks)."""
    from carscore import report

    def table() -> Any:
        if not include_days:
            return report.summary_table(assessment)
        if day_output is not None:
            from carscore.compile import COURSE

            return day_output.drop(COURSE)
        return report.day_table(assessment)

    try:
        if parquet_output(output):
            # Parquet holds the table a CSV would hold, typed (contract: .parquet by extension)
            if fmt is Format.json:
                raise usage("a .parquet output holds the CSV table: use --format csv (or leave --format out)")
            import io

            buffer = io.BytesIO()
            table().write_parquet(buffer)
            write(buffer.getvalue(), output)
        elif fmt is Format.json:
            if indented(output):
                doc = report.build_document(assessment, include_days=include_days, cohort=cohort)
                write(json_bytes(doc, 1 if include_days else 2), output)
            else:
                from carscore.jsontext import document_parts

                write(document_parts(assessment, include_days, cohort, day_output), output)
        elif fmt is Format.csv:
            write(report.csv_text(table()).encode("utf-8"), output)
        elif output is None or str(output) == "-":
            from carscore.cli.console import stdout_console

            with stdout_errors():
                table_renderer(assessment, stdout_console())
        else:
            from carscore.cli.console import text_console

            console, buffer = text_console()
            table_renderer(assessment, console)
            write_file(output, buffer.getvalue().encode("utf-8"))
    except OutputError:
        report_problems(assessment)
        raise
    raise typer.Exit(report_problems(assessment))


def parquet_output(output: Path | None) -> bool:
    return output is not None and output.suffix.lower() == ".parquet"
