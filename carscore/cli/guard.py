"""Every command runs guarded: each failure becomes one sentence on stderr and
an exit code (contract §3), never a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from carscore.cli.output import OutputError, say, silence_stdout

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def guarded(command: Callable[..., None]) -> Callable[..., None]:
    """Every failure becomes a sentence on stderr and an exit code, never a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            from carscore.errors import CarscoreError, RuleErrors
        except KeyboardInterrupt:
            interrupted()
        except Exception as exc:  # a broken installation: still a sentence
            say(f"internal error: carscore cannot start: {type(exc).__name__}: {exc}")
            raise typer.Exit(EXIT_INTERNAL) from None

        try:
            command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except OutputError as exc:
            say(f"error: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
        except RuleErrors as exc:
            for err in exc.errors:
                say(f"error: {err}")
            raise typer.Exit(EXIT_USAGE) from None
        except CarscoreError as exc:
            say(f"error: {exc}")
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            interrupted()
        except BrokenPipeError:
            silence_stdout()
            say("error: the output was cut short: the program reading it stopped (broken pipe)")
            raise typer.Exit(EXIT_USAGE) from None
        except MemoryError:
            say("error: not enough memory for this input; try fewer files at a time")
            raise typer.Exit(EXIT_USAGE) from None
        except Exception as exc:  # anything unforeseen: a sentence, not a traceback
            say(f"internal error: {type(exc).__name__}: {exc}. Please report it with the command that caused it.")
            raise typer.Exit(EXIT_INTERNAL) from None

    return run


def interrupted() -> None:
    say("carscore: interrupted; no output file was changed")
    raise typer.Exit(EXIT_INTERRUPTED) from None
