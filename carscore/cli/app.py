"""The carscore command line: parse arguments, call the library, render.

Heavy modules (polars, the engine, Rich tables) are imported inside the
commands, so that ``carscore --help`` starts at once.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from carscore import __version__

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

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


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


RulesOption = Annotated[
    list[Path] | None,
    typer.Option("--rules", help="Rule files or folders to use instead of the built-in rules (repeatable)."),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="table (terminal), json or csv.")]
OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="Write the result to this file.")]


def _guard(command: Callable[..., None]) -> Callable[..., None]:
    """Every failure becomes a sentence on stderr and an exit code, never a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        from carscore.errors import CarscoreError, RuleErrors

        try:
            command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except RuleErrors as exc:
            for err in exc.errors:
                _stderr(f"error: {err}")
            raise typer.Exit(EXIT_USAGE) from None
        except CarscoreError as exc:
            _stderr(f"error: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(EXIT_OK) from None
        except Exception as exc:  # anything unforeseen: a sentence, not a traceback
            _stderr(f"internal error: {type(exc).__name__}: {exc}. Please report it with the command that caused it.")
            raise typer.Exit(EXIT_INTERNAL) from None

    return run


def _stderr(message: str) -> None:
    from carscore.cli.render import error_console

    error_console().print(message, markup=False, highlight=False)


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


def _engine(rules: list[Path] | None):
    from carscore.assess import load_engine

    return load_engine(rules or None)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        if not text.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _usage(f"cannot write {output}: {exc.strerror or exc}") from None


def _usage(message: str) -> Exception:
    from carscore.errors import UsageError

    return UsageError(message)


def _report_problems(assessment: Any) -> int:
    for note in assessment.intake.notes:
        _stderr(f"note: {note}")
    for problem in assessment.intake.problems:
        _stderr(f"error: {problem}")
    return EXIT_DATA if assessment.intake.problems else EXIT_OK


def _emit(
    assessment: Any, fmt: Format, output: Path | None, include_days: bool, cohort: dict | None, table_renderer: Any
) -> None:
    from carscore import report

    if fmt is Format.json:
        doc = report.build_document(assessment, include_days=include_days, cohort=cohort)
        _write(json.dumps(doc, indent=1 if include_days else 2, ensure_ascii=False, default=str), output)
    elif fmt is Format.csv:
        table = report.day_table(assessment) if include_days else report.summary_table(assessment)
        _write(table.write_csv(), output)
    else:
        table_renderer(assessment, output)


@app.command()
@_guard
def grade(
    file: Annotated[str, typer.Argument(help="A patient CSV file (one or more patients and infusions), or - for stdin.")],
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    rules: RulesOption = None,
) -> None:
    """Grade every day of every course in one CSV file, with the reason for each grade."""
    from carscore.assess import assess_paths

    if file != "-" and not Path(file).is_file():
        raise _usage(f"{file}: no such file" + (" (use 'carscore cohort' for a folder)" if Path(file).is_dir() else ""))
    engine = _engine(rules)
    stdin = sys.stdin.buffer.read() if file == "-" else None
    assessment = assess_paths([file], engine, stdin)

    def render(a: Any, out: Path | None) -> None:
        from carscore.cli.render import render_grade

        render_grade(a, out)

    _emit(assessment, fmt, output, True, None, render)
    raise typer.Exit(_report_problems(assessment))


@app.command()
@_guard
def cohort(
    paths: Annotated[list[str], typer.Argument(help="CSV files and/or folders (searched recursively for *.csv).")],
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    days: Annotated[bool, typer.Option("--days", help="Include every day of every course (json/csv).")] = False,
    rules: RulesOption = None,
    confidence: Annotated[float, typer.Option(help="Confidence level of the Wilson intervals.", min=0.5, max=0.999)] = 0.95,
) -> None:
    """Assess a cohort: every course's summary, and cohort rates with Wilson confidence intervals."""
    from carscore import report
    from carscore.assess import assess_intake
    from carscore.cohort import cohort_statistics
    from carscore.intake import read_sources
    from carscore.sources import sources_from_paths

    engine = _engine(rules)
    sources, problems = sources_from_paths(paths)
    if len(sources) > 50 and sys.stderr.isatty():
        from carscore.cli.render import file_progress

        with file_progress(len(sources)) as advance:
            intake = read_sources(sources, engine.contract, on_file=advance)
    else:
        intake = read_sources(sources, engine.contract)
    intake.problems[:0] = problems
    assessment = assess_intake(intake, engine, reasons=days)
    stats = cohort_statistics(report.summary_rows(assessment), confidence)

    def render(a: Any, out: Path | None) -> None:
        from carscore.cli.render import render_cohort

        render_cohort(a, stats, out)

    _emit(assessment, fmt, output, days, stats, render)
    raise typer.Exit(_report_problems(assessment))


@rules_app.command("list")
@_guard
def rules_list(rules: RulesOption = None) -> None:
    """List the rule sets in use: id, version, title and file."""
    from carscore.cli.render import render_rules_list

    render_rules_list(_engine(rules).rulesets)


@rules_app.command("show")
@_guard
def rules_show(
    ruleset_id: Annotated[str, typer.Argument(metavar="ID", help="The id of a rule set (see 'carscore rules list').")],
    rules: RulesOption = None,
) -> None:
    """Show one rule set: its citation, parameters with their sources, and its rules."""
    from carscore.cli.render import render_ruleset

    rulesets = _engine(rules).rulesets
    for rs in rulesets:
        if rs.id == ruleset_id:
            render_ruleset(rs)
            return
    raise _usage(f"no rule set '{ruleset_id}'; known: {', '.join(r.id for r in rulesets)}")


@rules_app.command("validate")
@_guard
def rules_validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Rule files or folders (default: the built-in rules).")] = None,
) -> None:
    """Check rule files: YAML safety, fields, conditions, names and values. Errors as file:line:col."""
    from carscore.engine import Engine
    from carscore.ruleset import builtin_rules_dir, read_rules

    targets = paths or [builtin_rules_dir()]
    rulesets = read_rules(targets)
    Engine(rulesets)
    for rs in rulesets:
        typer.echo(f"ok  {rs.file}  ({rs.id} {rs.version})")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
