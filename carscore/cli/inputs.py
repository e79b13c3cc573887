"""What the commands share: their options, and reading their input (patient
CSV files as they are, or long exports imported first)."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from carscore.cli.output import usage


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


RulesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--rules",
        help="Rule files or folders to add to the built-in rule sets (repeatable). A rule set with the id of a "
        "built-in one replaces that one; the others are added.",
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="table (terminal), json or csv.")]
ColumnOption = Annotated[
    list[str] | None,
    typer.Option(
        "--column",
        metavar="HEADER=COLUMN",
        help="Read a header as a contract column, e.g. --column 'Temp C=temp_c' (repeatable); HEADER= leaves it out.",
    ),
]
IgnoreUnknownOption = Annotated[
    bool,
    typer.Option("--ignore-unknown-columns", help="Leave out headers that look like contract columns but are not (with a note)."),
]
FromOption = Annotated[
    str | None,
    typer.Option(
        "--from",
        metavar="PRESET|MAPPING.yaml",
        help="Import long, timestamped exports first: clif, fhir, sdtm, epic, redcap, or a mapping file of your own.",
    ),
]
InfusionsOption = Annotated[
    Path | None,
    typer.Option(
        "--infusions", help="With --from: CSV of patient_id, infusion, infusion_datetime (and age_years or birth_date)."
    ),
]
TimezoneOption = Annotated[
    str | None,
    typer.Option(
        "--timezone", metavar="Area/City", help="The care site's time zone (needed for timestamps with offsets or in UTC)."
    ),
]
SystemsOption = Annotated[
    str | None,
    typer.Option(
        "--systems",
        metavar="ID,ID,...",
        help="Grading systems to grade beside ASTCT (comma-separated ids of rule sets' 'system'), or all.",
    ),
]
ConfidenceOption = Annotated[
    float, typer.Option("--confidence", help="Confidence level of the Wilson intervals.", min=0.5, max=0.999)
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the result to this file (replaced only once complete; - for stdout)."),
]


def read_input(
    paths: list[str],
    engine: Any,
    stdin: bytes | None,
    column: list[str] | None,
    ignore_unknown: bool,
    source_format: str | None,
    infusions: Path | None,
    timezone: str | None,
    on_file: Callable[[], None] | None = None,
) -> Any:
    """The rows to grade: patient CSV files as they are, or long exports imported first."""
    from carscore.intake import read_sources
    from carscore.sources import Source, sources_from_paths

    if source_format is not None:
        if infusions is None:
            raise usage("--from needs --infusions: the infusion date of each course")
        if column:
            raise usage("--column maps headers of patient CSV files; with --from, map codes in a mapping file")
        from carscore.importer import import_sources

        imported = import_sources(paths, source_format, str(infusions), timezone, engine.contract)
        data = imported.rows.write_csv().encode("utf-8")
        intake = read_sources([Source(f"(imported with {source_format})", data)], engine.contract)
        intake.problems[:0] = imported.problems
        intake.notes[:0] = imported.notes
        return intake
    from carscore.csvread import parse_column_map

    column_map = parse_column_map(column or [], engine.contract)
    # every path goes through sources_from_paths: it reads each file once, even
    # when given twice or also found in a folder given (and says so in a note)
    source_notes: list[str] = []
    sources, problems = sources_from_paths(paths, stdin, notes=source_notes)
    intake = read_sources(sources, engine.contract, on_file, column_map=column_map, ignore_unknown=ignore_unknown)
    intake.problems[:0] = problems
    intake.notes[:0] = source_notes
    return intake


def assess_cohort(
    paths: list[str],
    engine: Any,
    stdin: bytes | None,
    column: list[str] | None,
    ignore_unknown: bool,
    days: str | None = None,
    on_output: Any = None,
) -> tuple[Any, Any]:
    """Patient CSV files assessed chunk by chunk (carscore.chunked): the course
    summaries, in memory bounded by the chunk; courses done shown on a terminal.
    ``days``: also every day, as "json" (each course's whole entry of the
    document, jsontext.course_entries) or as the "table" of the CSV
    (report.day_table), gathered from the chunks, or handed to ``on_output``
    chunk by chunk (chunked.assess_in_chunks)."""
    import sys

    from carscore.chunked import assess_in_chunks
    from carscore.csvread import parse_column_map

    column_map = parse_column_map(column or [], engine.contract)
    on_days = _day_encoder(days)
    options = {
        "column_map": column_map,
        "ignore_unknown": ignore_unknown,
        "on_days": on_days,
        "on_output": on_output,
        "reasons": days is not None,
    }
    if sys.stderr is None or not sys.stderr.isatty():
        return assess_in_chunks(paths, engine, stdin, **options)
    from carscore.cli.console import course_progress

    with course_progress() as tell:
        return assess_in_chunks(paths, engine, stdin, on_chunk=tell, **options)


def _day_encoder(days: str | None) -> Any:
    if days is None:
        return None
    from carscore.compile import COURSE

    if days == "json":
        from carscore.jsontext import course_entries

        return course_entries
    from carscore.report import day_table

    return lambda a: day_table(a).with_columns(a.days[COURSE])
