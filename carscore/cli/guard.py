"""Every command runs guarded: each failure becomes one sentence on stderr and
an exit code (contract §3), never a traceback."""

from __future__ import annotations

import functools
import sys
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


def leave(code: object) -> None:
    """End the process with the command's exit code.

    Once polars and numpy are loaded, Python's own shutdown spends 0.1 to 0.2 s
    tearing their modules down after the command has finished: a tenth of a
    cohort run of a million patient-days, on every run. Everything is written by
    then (output files closed and renamed, temporary files removed by the
    commands themselves), so with the standard streams flushed and no other
    thread running, the process ends at once. Otherwise (nothing heavy loaded,
    a thread still alive, a stream that cannot be flushed, an exit code that is
    not a number), Python's usual exit handles it."""
    import os
    import threading

    if code is None:
        code = EXIT_OK
    if "polars" not in sys.modules or not isinstance(code, int) or threading.active_count() > 1:
        sys.exit(code)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code & 0xFF)
