"""One patient CSV file made ready to read: its text decoded, its delimiter
and its header row found.

The delimiter is a comma, semicolon, tab or pipe, detected from the header
line (or an Excel ``sep=;`` first line). A delimiter other than comma is said
in a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from carscore.csvlines import MAX_CELL_LINES, read_quoted
from carscore.decoding import FileProblem, decode_file
from carscore.sources import Source

# The delimiters a header line is searched for, as a note names them.
_DELIMITERS = {",": "commas", ";": "semicolons (;)", "\t": "tabs", "|": "vertical bars (|)"}


@dataclass
class PreparedFile:
    """A decoded file with its header found; its rows are not read yet."""

    index: int  # of the source in read_frames' sources
    name: str
    data: bytes  # UTF-8, no byte-order mark, LF or CRLF line ends
    delim: str
    cells: list[str]  # header cells as written
    skip: int  # lines before the header (an Excel "sep=;" line)
    first: int  # 0-based index of the first physical line after the header
    notes: list[str]
    has_quote: bool
    has_nul: bool

    @property
    def header_key(self) -> tuple[str, ...]:
        return (self.delim, *self.cells)


def prepare_file(src: Source, index: int) -> PreparedFile:
    """The file decoded, with its delimiter and header cells; raises
    FileProblem when it cannot be read as CSV at all."""
    data, notes = decode_file(src.data)
    # lines are sliced out, never split off: splitting copies the whole buffer
    first_line = _line_at(data, 0)
    if b"\x00" in first_line:
        raise FileProblem("not a CSV file (it holds binary data)")

    if b'"' in first_line or first_line[:4].lower() == b"sep=":
        delim, cells, skip, first = _header(data)
    else:
        delim, cells = _plain_header(first_line)
        skip, first = 0, 1
    if delim != ",":
        notes.append(f"cells separated by {_DELIMITERS.get(delim, repr(delim))}")
    return PreparedFile(index, src.name, data, delim, list(cells), skip, first, notes, b'"' in data, b"\x00" in data)


def _detect_delimiter(header_line: str) -> str:
    """The delimiter is the candidate the header line holds most often
    (outside quotes); comma when it holds none (a one-column file)."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: unquoted.count(d) for d in _DELIMITERS}
    return max(_DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","


@lru_cache(maxsize=1024)
def _plain_header(first_line: bytes) -> tuple[str, tuple[str, ...]]:
    """Delimiter and cells of a header line without quotes; cached, since a
    cohort of one file per patient repeats the same header thousands of times."""
    line = first_line.rstrip(b"\r").decode("utf-8", "replace")
    delim = _detect_delimiter(line)
    return delim, tuple(line.split(delim))


def _header(data: bytes) -> tuple[str, list[str], int, int]:
    """Delimiter, cells, lines before the header and the index of the first
    data line, for a header with quotes or after an Excel "sep=;" line."""
    skip, delim = 0, None
    head = _line_at(data, 0).rstrip(b"\r").strip(b'"').decode("utf-8", "replace")
    if len(head) == 5 and head.lower().startswith("sep="):
        delim, skip = head[4], 1
    header_line = _line_at(data, skip).rstrip(b"\r").decode("utf-8", "replace")
    if delim is None:
        delim = _detect_delimiter(header_line)
    if '"' not in header_line:
        return delim, header_line.split(delim), skip, skip + 1
    # a quoted header cell may hold a line break: read the header as a record
    end = 0
    for _ in range(skip + MAX_CELL_LINES + 1):
        end = data.find(b"\n", end) + 1
        if end == 0:
            end = len(data)
            break
    rec = read_quoted(data[:end].decode("utf-8").split("\n"), skip, delim, 0)
    if rec.error is not None:
        raise FileProblem(f"the header row: {rec.error.removeprefix('malformed CSV row: ')}", skip + 1)
    return delim, [c or "" for c in rec.cells], skip, skip + rec.lines


def _line_at(data: bytes, n: int) -> bytes:
    """Physical line n (0-based) without its LF; empty past the end."""
    start = 0
    for _ in range(n):
        start = data.find(b"\n", start) + 1
        if start == 0:
            return b""
    end = data.find(b"\n", start)
    return data[start:] if end < 0 else data[start:end]
