"""The carscore command line: parse arguments, call the library, render.

Heavy modules (polars, the engine, Rich tables) are imported inside the
commands, so that ``carscore --help`` starts at once.

Exit codes (contract section 3): 0 every course assessed; 1 some input could
not be assessed (the rest is reported); 2 a usage error, an invalid rule file,
or a result that could not be written (a missing folder, a read-only file, a
full disk, a closed or broken standard output); 130 interrupted (Ctrl-C).
Every failure is one sentence on stderr, never a traceback.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from carscore import __version__
from carscore.cli import export_command, plot_command, report_command
from carscore.cli.common import engine_for, report_problems, start, usage
from carscore.cli.emit import GRADE_TABLE_COURSES, AllOption, StreamedOutput, cohort_table_courses, emit, parquet_output
from carscore.cli.guard import EXIT_DATA, EXIT_INTERRUPTED, EXIT_OK, guarded, leave
from carscore.cli.inputs import (
    ColumnOption,
    ConfidenceOption,
    Format,
    FormatOption,
    FromOption,
    IgnoreUnknownOption,
    InfusionsOption,
    OutputOption,
    RulesOption,
    SystemsOption,
    TimezoneOption,
    assess_cohort,
    read_input,
)
from carscore.cli.output import (
    OutputError,
    check_stdout_usable,
    indented,
    json_bytes,
    refuse_input_as_output,
    reserve_standard_streams,
    say,
    stdout_errors,
    to_stdout,
    write,
)

app = typer.Typer(
    name="carscore",
    help="Grade CAR-T toxicities (ASTCT 2019 CRS and ICANS) day by day, classify CNS status and marrow "
    "response, and follow CAR-T kinetics, from day-by-day CSV data and YAML rule sets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rules_app = typer.Typer(help="List, show and validate rule sets.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"carscore {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """carscore: CAR-T toxicity grading and disease-course assessment."""


# --- commands -------------------------------------------------------------------


@app.command()
@guarded
def grade(
    files: Annotated[
        list[str],
        typer.Argument(help="A patient CSV file (one or more patients and infusions), or - for stdin; with --from, the exports."),
    ],
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    rules: RulesOption = None,
    column: ColumnOption = None,
    ignore_unknown_columns: IgnoreUnknownOption = False,
    source_format: FromOption = None,
    infusions: InfusionsOption = None,
    timezone: TimezoneOption = None,
    systems: SystemsOption = None,
    show_all: AllOption = False,
) -> None:
    """Grade every day of every course in one CSV file, with the reason for each grade."""
    if source_format is None:
        if len(files) != 1:
            raise usage("grade reads one CSV file (use 'carscore cohort' for several, or --from to import exports)")
        file = files[0]
        if file != "-" and not Path(file).is_file():
            raise usage(f"{file}: no such file" + (" (use 'carscore cohort' for a folder)" if Path(file).is_dir() else ""))
    stdin, engine = start(files, output, rules, systems)
    intake = read_input(files, engine, stdin, column, ignore_unknown_columns, source_format, infusions, timezone)

    from carscore.assess import assess_intake

    assessment = assess_intake(intake, engine)

    def render(a: Any, console: Any) -> None:
        from carscore.cli.render import render_grade

        render_grade(a, console, None if show_all else GRADE_TABLE_COURSES)

    emit(assessment, fmt, output, True, None, render)


@app.command()
@guarded
def cohort(
    paths: Annotated[list[str], typer.Argument(help="CSV files and/or folders (searched recursively for *.csv); - for stdin.")],
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    days: Annotated[bool, typer.Option("--days", help="Include every day of every course (json/csv).")] = False,
    rules: RulesOption = None,
    confidence: ConfidenceOption = 0.95,
    column: ColumnOption = None,
    ignore_unknown_columns: IgnoreUnknownOption = False,
    source_format: FromOption = None,
    infusions: InfusionsOption = None,
    timezone: TimezoneOption = None,
    systems: SystemsOption = None,
    show_all: AllOption = False,
    rates: Annotated[
        bool,
        typer.Option(
            "--rates", help="With --format csv: the cohort rates (and grade distributions) instead of the course summaries."
        ),
    ] = False,
) -> None:
    """Assess a cohort: every course's summary, and cohort rates with Wilson confidence intervals."""
    if rates and (fmt is not Format.csv or days):
        raise usage("--rates writes the cohort rates as CSV: use it with --format csv and without --days")
    # the rules compile while the cohort's first chunks are read
    stdin, engine = start(paths, output, rules, systems, plan_later=True)

    from carscore.assess import assess_intake
    from carscore.cohort import cohort_of

    with contextlib.ExitStack() as cleanup:
        import_options = (column, ignore_unknown_columns, source_format, infusions, timezone)
        day_output, streamed = None, None
        shown_days = days and (fmt is not Format.table or parquet_output(output))
        if source_format is None and not (shown_days and fmt is Format.json and indented(output)):
            # chunk by chunk, in memory bounded by the chunk (carscore.chunked); the days, when
            # asked, gathered from the chunks already in their written form
            as_json = fmt is Format.json and not parquet_output(output)
            wanted = None if not shown_days else "json" if as_json else "table"
            # the days are written to the output file while the rest is graded
            streamable = wanted == "json" or (wanted == "table" and fmt is Format.csv and not parquet_output(output))
            streamed = StreamedOutput.begin(output, engine, fmt) if streamable else None
            if streamed is not None:
                cleanup.callback(streamed.abandon)  # whatever stops the run: nothing once the document is finished
            on_output = streamed.add if streamed is not None else None
            assessment, day_output = assess_cohort(paths, engine, stdin, column, ignore_unknown_columns, wanted, on_output)
        elif source_format is None and sys.stderr is not None and sys.stderr.isatty():
            from carscore.cli.console import file_progress

            with file_progress(None) as advance:
                intake = read_input(paths, engine, stdin, *import_options, on_file=advance)
            assessment = assess_intake(intake, engine, reasons=days)
        else:
            intake = read_input(paths, engine, stdin, *import_options)
            assessment = assess_intake(intake, engine, reasons=days)
        stats = cohort_of(assessment, confidence)
        if rates:
            from carscore import report
            from carscore.export.rates import rates_table

            try:
                write(report.csv_text(rates_table(stats, assessment.rulesets)).encode("utf-8"), output)
            except OutputError:
                report_problems(assessment)
                raise
            raise typer.Exit(report_problems(assessment))

        def render(a: Any, console: Any) -> None:
            from carscore.cli.cohort_view import render_cohort

            render_cohort(a, stats, console, None if show_all else cohort_table_courses())

        emit(assessment, fmt, output, days, stats, render, day_output, streamed)


@app.command()
@guarded
def compare(
    paths: Annotated[list[str], typer.Argument(help="CSV files and/or folders (as for cohort); - for stdin.")],
    systems: Annotated[str, typer.Option("--systems", metavar="ID,ID,...", help="Systems to compare (or all).")],
    reference: Annotated[
        str | None, typer.Option("--reference", help="The system the others are set against (default: the reference system).")
    ] = None,
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    rules: RulesOption = None,
    source_format: FromOption = None,
    infusions: InfusionsOption = None,
    timezone: TimezoneOption = None,
) -> None:
    """Concordance of grading systems: the share of courses on which they agree, and each against the reference."""
    stdin, engine = start(paths, output, rules, systems)
    from carscore.assess import REFERENCE_SYSTEM

    reference = reference or REFERENCE_SYSTEM
    chosen = sorted({rs.system for rs in engine.rulesets if rs.system})
    if reference not in chosen:
        raise usage(f"the reference '{reference}' is not among the systems graded: {', '.join(chosen)}")
    chosen = [reference] + [s for s in chosen if s != reference]

    from carscore import report
    from carscore.assess import assess_intake
    from carscore.compare import block_family, comparison_rows, comparisons

    intake = read_input(paths, engine, stdin, None, False, source_format, infusions, timezone)
    assessment = assess_intake(intake, engine, reasons=False)
    blocks = comparisons(report.summary_rows(assessment), engine.rulesets, chosen, reference)
    if not blocks:
        raise usage(f"nothing to compare: no other selected system grades what '{reference}' grades ({', '.join(chosen)})")
    if fmt is Format.json:
        doc = {"carscore": report.__version__, "rulesets": report.ruleset_info(assessment), **blocks}
        write(json_bytes(doc, 2), output)
    elif fmt is Format.csv:
        import polars as pl

        rows = [
            row
            for name, block in blocks.items()
            for row in comparison_rows(block, f"{block_family(name)}_" if block_family(name) else "")
        ]
        write(report.csv_text(pl.DataFrame(rows)).encode("utf-8"), output)
    else:
        from carscore.cli.compare_view import render_comparison
        from carscore.cli.console import stdout_console

        for name, block in blocks.items():
            render_comparison(block, stdout_console(), block_family(name))
    raise typer.Exit(report_problems(assessment))


@app.command("import")
@guarded
def import_command(
    sources: Annotated[list[str], typer.Argument(help="Export files or folders (CSV, Parquet, NDJSON, SAS XPT).")],
    source_format: Annotated[
        str,
        typer.Option("--from", metavar="PRESET|MAPPING.yaml", help="clif, fhir, sdtm, epic, redcap, or a mapping file."),
    ],
    infusions: Annotated[
        Path, typer.Option("--infusions", help="CSV of patient_id, infusion, infusion_datetime (and age_years or birth_date).")
    ],
    timezone: TimezoneOption = None,
    output: OutputOption = None,
) -> None:
    """Turn long, timestamped exports into carscore rows: one per patient and instant, with day, time and source."""
    check_stdout_usable(output)
    refuse_input_as_output(output, [*sources, str(infusions)])
    from carscore.importer import import_sources

    imported = import_sources(sources, source_format, str(infusions), timezone)
    if output is not None and output.suffix.lower() == ".parquet":
        import io

        buffer = io.BytesIO()
        imported.rows.write_parquet(buffer)
        write(buffer.getvalue(), output)
    else:
        from carscore.report import csv_text

        write(csv_text(imported.rows).encode("utf-8"), output)
    for note in imported.notes:
        say(f"note: {note}")
    for problem in imported.problems:
        say(f"error: {problem}")
    raise typer.Exit(EXIT_DATA if imported.problems else EXIT_OK)


@rules_app.command("list")
@guarded
def rules_list(rules: RulesOption = None) -> None:
    """List the rule sets in use: id, version, title, whether built-in or from --rules, and file."""
    from carscore.cli.console import stdout_console
    from carscore.cli.rules_view import render_rules_list
    from carscore.rulesources import sources_of

    engine = engine_for(rules, "all")
    with stdout_errors():
        render_rules_list(engine.rulesets, sources_of(engine), stdout_console())


@rules_app.command("show")
@guarded
def rules_show(
    ruleset_id: Annotated[str, typer.Argument(metavar="ID", help="The id of a rule set (see 'carscore rules list').")],
    rules: RulesOption = None,
) -> None:
    """Show one rule set: its citation, parameters with their sources, and its rules."""
    from carscore.cli.console import printable, stdout_console
    from carscore.cli.rules_view import render_ruleset
    from carscore.rulesources import sources_of

    engine = engine_for(rules, "all")
    for rs in engine.rulesets:
        if rs.id == ruleset_id:
            with stdout_errors():
                render_ruleset(rs, stdout_console(), sources_of(engine).get(rs.id))
            return
    known = ", ".join(r.id for r in engine.rulesets)
    raise usage(f"no rule set '{printable(ruleset_id)}'; known: {known}")


@rules_app.command("test")
@guarded
def rules_test(
    case_files: Annotated[list[Path], typer.Argument(help="Case files (YAML): short courses with the grades they must get.")],
    rules: RulesOption = None,
) -> None:
    """Run rule cases against the rule sets in use (built-in, the case file's own 'rules', and --rules)."""
    from carscore.casefile import read_case_file, run_case_file
    from carscore.cli.console import printable

    failed = total = 0
    lines = []
    for path in case_files:
        case_file = read_case_file(path)
        for outcome in run_case_file(case_file, rules or []):
            total += 1
            if outcome.passed:
                continue
            failed += 1
            lines.append(f"FAIL {path}: case {outcome.case.index} {outcome.case.name}")
            lines += [f"     {failure}" for failure in outcome.failures]
    lines.append(f"{total - failed} passed, {failed} failed")
    to_stdout(("\n".join(printable(line) for line in lines) + "\n").encode("utf-8"))
    raise typer.Exit(EXIT_DATA if failed else EXIT_OK)


@rules_app.command("validate")
@guarded
def rules_validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Rule files or folders (default: the built-in rules), checked together with the built-in rules."),
    ] = None,
) -> None:
    """Check rule files: YAML safety, fields, conditions, names and values. Errors as file:line:col.

    The files are checked as --rules uses them: together with the built-in
    rule sets, a rule set with the id of a built-in one in its place."""
    from carscore.cli.console import printable
    from carscore.rulesources import library_sources, sources_of

    # every grading system is compiled, with the libraries it includes
    engine = engine_for(paths, "all")
    sources = sources_of(engine)
    lines = []
    for rs in engine.rulesets:
        src = sources[rs.id]
        origin = "" if src.builtin else (", replaces the built-in" if src.replaces_builtin else ", added")
        lines.append(printable(f"ok  {src.path}  ({rs.id} {rs.version}{origin})") + "\n")
    for library, src in library_sources(paths):
        users = ", ".join(rs.id for rs in engine.rulesets if library.id in rs.includes) or "no rule set"
        lines.append(printable(f"ok  {src.path}  ({library.id} {library.version}, library included by {users})") + "\n")
    to_stdout("".join(lines).encode("utf-8"))


# commands with their own modules: figures, the HTML report, registry and CDISC exports
app.command("plot")(guarded(plot_command.plot))
app.command("report")(guarded(report_command.report))
app.command("export")(guarded(export_command.export))


def main() -> None:
    """Console entry point: runs one command and ends the process with its exit code."""
    reserve_standard_streams()
    try:
        app()
        code: object = EXIT_OK
    except KeyboardInterrupt:
        say("carscore: interrupted")
        code = EXIT_INTERRUPTED
    except SystemExit as exc:
        code = exc.code
    leave(code)


if __name__ == "__main__":
    main()
