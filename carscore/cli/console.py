"""Consoles for carscore's terminal output, and the rule that everything from
the user is shown literally: no markup, no emoji codes, control characters
and terminal escape sequences shown escaped (``\\x1b``), so that an id such
as ``[red]X[/red]`` prints as written and a file name cannot send escape
sequences to the terminal. NO_COLOR (and a non-terminal stdout) gives plain
text. Data goes to stdout, messages to stderr."""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.text import Text

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b\u200e\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_UNPRINTABLE_KEEP_LINES = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: Any, keep_newlines: bool = False) -> str:
    """``value`` as text safe for a terminal: control characters, terminal
    escape sequences and invisible direction marks are shown escaped
    (ESC as ``\\x1b``); everything else, brackets included, is kept as written."""
    text = value if isinstance(value, str) else str(value)
    pattern = _UNPRINTABLE_KEEP_LINES if keep_newlines else _UNPRINTABLE
    return pattern.sub(_escape_char, text)


def literal(value: Any, style: str = "", keep_newlines: bool = False) -> Text:
    """User text for a Rich renderable: never read as markup, control characters escaped."""
    return Text(printable(value, keep_newlines), style=style)


def _plain() -> dict[str, Any]:
    """NO_COLOR (no-color.org) asks for plain text: no colour and no styles."""
    return {"color_system": None} if os.environ.get("NO_COLOR") else {}


# what carscore prints is data and messages: no markup, no :emoji: codes
_LITERAL = {"markup": False, "emoji": False, "highlight": False}


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Rich would exit with status 1 on its own; the CLI says what happened instead."""
        self.quiet = True
        raise BrokenPipeError("the program reading the output stopped")


def error_console() -> Console:
    return _Console(stderr=True, soft_wrap=True, **_LITERAL, **_plain())


def message(text: str, style: str = "") -> None:
    """A line on stderr; a closed or broken stderr loses it, and nothing else."""
    if sys.stderr is None:
        return
    try:
        error_console().print(literal(text, style))
    except (OSError, ValueError):
        pass


def stdout_console() -> Console:
    """A terminal gets its own width; a pipe or a file gets room for the reasons,
    which are never cut (they wrap)."""
    tty = sys.stdout is not None and sys.stdout.isatty()
    wide = {} if tty or os.environ.get("COLUMNS") else {"width": 160}
    return _Console(**wide, **_LITERAL, **_plain())


def text_console() -> tuple[Console, io.StringIO]:
    """A console that renders into a string, for a result written to a file."""
    buffer = io.StringIO()
    return Console(file=buffer, color_system=None, width=160, force_terminal=False, **_LITERAL), buffer


@contextmanager
def course_progress() -> Iterator[Callable[[int], None]]:
    """Courses assessed so far, on stderr, while a large cohort is read chunk by chunk."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("assessing: {task.fields[done]:,} courses done"), TimeElapsedColumn())
    with Progress(*columns, console=error_console(), transient=True) as progress:
        task = progress.add_task("courses", total=None, done=0)
        yield lambda done: progress.update(task, done=done)


@contextmanager
def file_progress(total: int | None) -> Iterator[Callable[[], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("reading"), BarColumn(), MofNCompleteColumn(), console=error_console(), transient=True) as progress:
        task = progress.add_task("files", total=total)
        yield lambda: progress.advance(task)
