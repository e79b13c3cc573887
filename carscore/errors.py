"""Error types. Each carries where it came from, so that every message can
name a file and a line (rule files) or a file, row and column (patient data)."""

from __future__ import annotations

from dataclasses import dataclass


class CarscoreError(Exception):
    """Base class: a problem the user can fix, never a bug to show as a traceback."""


class RuleError(CarscoreError):
    """A rule file that cannot be used: reported as ``file:line:col: sentence``."""

    def __init__(self, message: str, file: str = "", line: int = 0, col: int = 0):
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file or "<rules>"
        if self.line:
            where += f":{self.line}:{self.col or 1}"
        return f"{where}: {self.message}"


class RuleErrors(CarscoreError):
    """Several rule errors found in one validation pass."""

    def __init__(self, errors: list[RuleError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class UsageError(CarscoreError):
    """Wrong command-line use (a missing file, an unknown format)."""


@dataclass(frozen=True)
class InputProblem:
    """One problem in a patient data file. ``row`` is the line number in the
    file (the header is line 1); 0 when the whole file is concerned."""

    file: str
    message: str
    row: int = 0
    column: str = ""
    value: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.row:
            where += f", row {self.row}"
        if self.column:
            where += f", column {self.column}"
        text = f"{where}: {self.message}"
        if self.value != "":
            text += f" (value {self.value!r})"
        return text

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "row": self.row or None,
            "column": self.column or None,
            "value": self.value if self.value != "" else None,
            "message": self.message,
        }
