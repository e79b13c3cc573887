"""The steps every grading command shares: compile the rules, make sure the
result has somewhere to go, read standard input, and name the problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from carscore.cli.guard import EXIT_DATA, EXIT_OK
from carscore.cli.output import check_stdout_usable, read_stdin, refuse_input_as_output, rule_files, say


def engine_for(rules: list[Path] | None, systems: str | None = None, plan_later: bool = False):
    from carscore.assess import load_engine

    chosen = [s.strip() for s in systems.split(",") if s.strip()] if systems else None
    return load_engine(rules or None, systems=chosen, plan_later=plan_later)


def start(
    paths: list[str], output: Path | None, rules: list[Path] | None, systems: str | None, plan_later: bool = False
) -> tuple[bytes | None, Any]:
    """What every grading command does first: make sure the result has somewhere
    to go, read standard input, read (and compile) the rules, refuse to write
    onto an input. ``plan_later``: the rules compile on a thread of their own
    while the first input is read (carscore.engine.Engine.plan_in_background)."""
    check_stdout_usable(output)
    # standard input is read before polars is imported: polars' SIGINT handler
    # restarts a blocked read, so Ctrl-C would not stop a wait for input after it
    stdin = read_stdin() if "-" in paths else None
    engine = engine_for(rules, systems, plan_later)
    refuse_input_as_output(output, [p for p in paths if p != "-"] + rule_files(engine))
    return stdin, engine


def usage(message: str) -> Exception:
    from carscore.errors import UsageError

    return UsageError(message)


def report_problems(assessment: Any) -> int:
    for note in assessment.intake.notes:
        say(f"note: {note}")
    for problem in assessment.intake.problems:
        say(f"error: {problem}")
    return EXIT_DATA if assessment.intake.problems else EXIT_OK
