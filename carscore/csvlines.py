"""The careful road's reader of CSV records, in Python, one record at a time:
for the few lines of a file that polars cannot be trusted with (a quoted cell
running over several lines, a stray or unmatched quote mark, a NUL byte, more
cells than the header). Each record keeps the physical line it starts on, and
a malformed record says what is wrong with it, and in which cell, while the
cells that can be told are still read (to know whose row it is).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import polars as pl

# A quoted cell may hold line breaks (notes); one running over more lines
# than this is taken for an unmatched quote, which keeps the careful road
# linear on a file full of stray quote marks.
MAX_CELL_LINES = 50
# How a row with more cells than its header names the delimiter it suspects.
_DELIMITER_WORD = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}


@dataclass
class Record:
    """One record read in Python; `error` says why it is malformed (None when it is not)."""

    line: int  # physical line the record starts on (1-based)
    cells: list[str | None]
    error: str | None = None
    column: int = -1  # index of the cell the error concerns, -1 when none
    value: str = ""
    lines: int = 1  # physical lines the record spans


_STRAY_QUOTE = (
    "malformed CSV row: a quote mark inside a cell that does not start with one "
    '(write the whole cell in quotes and double the quote mark: "O""Brien")'
)
_AFTER_QUOTE = "malformed CSV row: text after the closing quote mark of a quoted cell"
_UNMATCHED_QUOTE = "malformed CSV row: a quoted cell starts here and is never closed (an unmatched quote mark)"


def _chomp(line: str) -> str:
    return line[:-1] if line.endswith("\r") else line


def read_quoted(lines: list[str], start: int, delim: str, width: int) -> Record:
    """One record holding a quote mark, read character by character. It may
    run over several physical lines (a quoted cell with a line break)."""
    cells: list[str | None] = []
    cell: list[str] = []
    first = _chomp(lines[start])
    i, line, pos = start, first, 0
    cell_start = 0
    quoted = closing = False  # inside a quoted cell / just after a quote mark in it
    at_start = True
    # the cell that first runs over a line end: if anything goes wrong later,
    # its quote mark is the one left unmatched
    span_column, span_value = -1, ""

    def unmatched() -> Record:
        return Record(start + 1, cells, _UNMATCHED_QUOTE, span_column, span_value, lines=1)

    while True:
        if pos == len(line):
            if quoted and not closing:
                if span_column < 0:
                    span_column, span_value = len(cells), _cell_text(first, cell_start, delim)
                # the quoted cell goes on in the next physical line, unless
                # that line looks like a row of its own: then the quote is
                # unmatched and the rows after it must not be swallowed
                nxt = i + 1
                if nxt >= len(lines) or nxt - start >= MAX_CELL_LINES:
                    return unmatched()
                following = _chomp(lines[nxt])
                if following.split('"', 1)[0].count(delim) >= max(2, width - 1):
                    return unmatched()
                cell.append("\n")
                i, line, pos = nxt, following, 0
                continue
            cells.append("".join(cell))
            return Record(start + 1, cells, lines=i - start + 1)
        c = line[pos]
        pos += 1
        if quoted:
            if closing:
                if c == '"':
                    cell.append('"')
                    closing = False
                elif c == delim:
                    cells.append("".join(cell))
                    cell, quoted, closing, at_start, cell_start = [], False, False, True, pos
                elif i != start:
                    return unmatched()
                else:
                    return Record(start + 1, cells, _AFTER_QUOTE, len(cells), _cell_text(line, cell_start, delim))
            elif c == '"':
                closing = True
            else:
                cell.append(c)
            continue
        if at_start and c == '"':
            quoted, at_start = True, False
            continue
        at_start = False
        if c == delim:
            cells.append("".join(cell))
            cell, at_start, cell_start = [], True, pos
        elif c == '"':
            if i != start:
                return unmatched()
            return Record(start + 1, cells, _STRAY_QUOTE, len(cells), _cell_text(line, cell_start, delim))
        else:
            cell.append(c)


def _cell_text(line: str, start: int, delim: str) -> str:
    end = line.find(delim, start)
    return line[start:] if end < 0 else line[start:end]


def _lenient(line: str, delim: str) -> list[str | None]:
    """The cells of a malformed line as well as they can be told, to know
    whose row it is (quotes read loosely, as Python's csv module does)."""
    try:
        return list(next(csv.reader([line], delimiter=delim), []))
    except csv.Error:
        return list(line.split(delim))


def well_formed_pattern(delim: str) -> str:
    """A physical line that is one complete record: quote marks only around
    whole cells, doubled inside them. Valid both for Python re and polars."""
    d = f"\\x{ord(delim):02x}"
    cell = f'(?:"[^"]*(?:""[^"]*)*"|[^"{d}]*)'
    return f"^{cell}(?:{d}{cell})*\\r?$"


class PhysicalLines:
    """Physical lines held by polars; a Python string is made only for a line
    the careful road reads itself."""

    def __init__(self, series: pl.Series):
        self.series = series

    def __len__(self) -> int:
        return self.series.len()

    def __getitem__(self, i: int) -> str:
        return self.series[i]


def record_at(lines: PhysicalLines, i: int, delim: str, width: int) -> Record:
    """The record that starts on physical line index i, read in Python."""
    raw = _chomp(lines[i])
    if '"' not in raw:
        rec = Record(i + 1, list(raw.split(delim)))
    else:
        rec = read_quoted(lines, i, delim, width)  # type: ignore[arg-type]
        if rec.error is not None:
            # a malformed record is only its first line: the lines after it
            # are read as rows of their own
            rec.cells, rec.lines = _lenient(raw, delim), 1
    if any(c is not None and "\x00" in c for c in rec.cells):
        _mark_nul(rec)
    if len(rec.cells) > width:
        if rec.error is None and any(c and c.strip() for c in rec.cells[width:]):
            rec.error = (
                f"malformed CSV row: {len(rec.cells)} cells where the header has {width} "
                f"(a {_DELIMITER_WORD.get(delim, repr(delim))} inside a cell that is not in quotes?)"
            )
        # empty cells past the header's last column hold nothing: dropped
        rec.cells = rec.cells[:width]
    return rec


def _mark_nul(rec: Record) -> None:
    for k, cell in enumerate(rec.cells):
        if cell is not None and "\x00" in cell:
            if rec.error is None:
                rec.error = "malformed CSV row: it holds a NUL byte (binary data)"
                rec.column, rec.value = k, cell.replace("\x00", "\\0")
            rec.cells[k] = None
