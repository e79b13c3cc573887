"""Where each character of a YAML scalar stood in its file.

A condition written over several lines (a folded ``>-`` block, a quoted
string broken across lines) reaches the rule reader as one string; to point
an error at the offending token, the folding is replayed character by
character, the way PyYAML's scanner reads each scalar style."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# What YAML (and PyYAML's reader, counting lines for its marks) takes for a line break.
_BREAKS = "\r\n\x85\u2028\u2029"
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# Escapes of double-quoted scalars, as PyYAML's scanner reads them.
_ESCAPES = {
    "0": "\0",
    "a": "\x07",
    "b": "\x08",
    "t": "\t",
    "\t": "\t",
    "n": "\n",
    "v": "\x0b",
    "f": "\x0c",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "\\": "\\",
    "/": "/",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_ESCAPE_CODES = {"x": 2, "u": 4, "U": 8}


class Text:
    """The whole file text, with where each line starts (YAML's line breaks)."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]

    def line_col(self, index: int) -> tuple[int, int]:
        """1-based line and column of a character, counted as YAML counts
        them (a byte-order mark takes no column), so they agree with marks."""
        row = bisect.bisect_right(self.starts, index) - 1
        start = self.starts[row]
        return row + 1, index - start - self.text.count("\ufeff", start, index) + 1


def _read_break(text: str, i: int) -> tuple[str, int]:
    """The line break at ``i`` as YAML reads it ('' if none) and the index after it."""
    if text.startswith("\r\n", i):
        return "\n", i + 2
    if i < len(text) and text[i] in "\r\n\x85":
        return "\n", i + 1
    if i < len(text) and text[i] in "\u2028\u2029":
        return text[i], i + 1
    return "", i


def _blank_lines(text: str, i: int, stop: int) -> tuple[list[tuple[str, int]], int]:
    """After a line break inside a flow scalar: each blank line that follows
    is kept as a break, and the next line's indentation is skipped."""
    breaks: list[tuple[str, int]] = []
    while True:
        while i < stop and text[i] in " \t":
            i += 1
        if i < stop and text[i] in _BREAKS:
            brk, after = _read_break(text, i)
            breaks.append((brk, i))
            i = after
        else:
            return breaks, i


def _flow_chars(text: str, start: int, end: int, style: str | None) -> Iterator[tuple[str, int]]:
    """Each character of a plain or quoted scalar's value with the index of
    the source character it comes from, replaying YAML's folding (a single
    line break is a space, each blank line a newline, indentation and
    trailing spaces dropped) and its escapes ('' in single quotes, \\x in
    double quotes). Characters YAML adds (a folded space) point at the break."""
    quoted = style in ("'", '"')
    i, stop = (start + 1, end - 1) if quoted else (start, end)
    while i < stop:
        ch = text[i]
        if ch in " \t":
            j = i
            while j < stop and text[j] in " \t":
                j += 1
            if not (j < stop and text[j] in _BREAKS):
                yield from ((text[k], k) for k in range(i, j))
            i = j  # spaces before a line break are dropped by folding
        elif ch in _BREAKS:
            first, after = _read_break(text, i)
            breaks, after = _blank_lines(text, after, stop)
            if first != "\n":
                yield first, i
            elif not breaks:
                yield " ", i
            yield from breaks
            i = after
        elif style == "'" and text.startswith("''", i):
            yield "'", i
            i += 2
        elif style == '"' and ch == "\\":
            code = text[i + 1] if i + 1 < stop else ""
            if code in _ESCAPES:
                yield _ESCAPES[code], i
                i += 2
            elif code in _ESCAPE_CODES:
                width = _ESCAPE_CODES[code]
                yield chr(int(text[i + 2 : i + 2 + width], 16)), i
                i += 2 + width
            elif code and code in _BREAKS:
                # an escaped line break joins the lines without a space
                _, after = _read_break(text, i + 1)
                breaks, i = _blank_lines(text, after, stop)
                yield from breaks
            else:
                return
        else:
            yield ch, i
            i += 1


def _block_chars(text: str, start: int, indent: int | None) -> list[tuple[str, int]]:
    """Each character of a literal (|) or folded (>) block scalar's value with
    the index of its source character, replaying PyYAML's scanner: header
    (indicators, comment), indentation (given, or detected from the first
    lines), lines kept (|) or folded (>: one break between two lines of text
    is a space, more-indented lines keep their breaks) and chomping."""
    n = len(text)
    folded = text[start] == ">"
    chomping: bool | None = None
    i = start + 1
    while i < n and text[i] in "+-0123456789":
        chomping = True if text[i] == "+" else False if text[i] == "-" else chomping
        i += 1
    while i < n and text[i] not in _BREAKS:  # spaces and a comment
        i += 1
    _, i = _read_break(text, i)

    def breaks_and_indentation(i: int, indent: int) -> tuple[list[tuple[str, int]], int, int]:
        col = 0
        while col < indent and i < n and text[i] == " ":
            i, col = i + 1, col + 1
        found: list[tuple[str, int]] = []
        while i < n and text[i] in _BREAKS:
            brk, after = _read_break(text, i)
            found.append((brk, i))
            i, col = after, 0
            while col < indent and i < n and text[i] == " ":
                i, col = i + 1, col + 1
        return found, i, col

    if indent is None:
        # detected: the deepest indentation among the leading lines
        breaks: list[tuple[str, int]] = []
        indent = col = 0
        while i < n and text[i] in " " + _BREAKS:
            if text[i] == " ":
                i, col = i + 1, col + 1
                indent = max(indent, col)
            else:
                brk, after = _read_break(text, i)
                breaks.append((brk, i))
                i, col = after, 0
    else:
        breaks, i, col = breaks_and_indentation(i, indent)

    out: list[tuple[str, int]] = []
    line_break, break_at = "", i
    while col == indent and i < n:
        out.extend(breaks)
        text_first = text[i] not in " \t"
        j = i
        while j < n and text[j] not in _BREAKS:
            j += 1
        out.extend((text[k], k) for k in range(i, j))
        break_at = j
        line_break, i = _read_break(text, j)
        breaks, i, col = breaks_and_indentation(i, indent)
        if col != indent or i >= n:
            break
        if folded and line_break == "\n" and text_first and text[i] not in " \t":
            if not breaks:
                out.append((" ", break_at))
        else:
            out.append((line_break, break_at))
    if chomping is not False and line_break:
        out.append((line_break, break_at))
    if chomping is True:
        out.extend(breaks)
    return out


@dataclass(frozen=True)
class Origin:
    """Where a string scalar stands in its file's text: enough to map an
    offset in its value back to a line and column, computed only when an
    error needs it."""

    source: Text
    start: int  # index of the scalar's own first character (quote, '|', '>')
    end: int
    style: str | None

    @property
    def multi_line(self) -> bool:
        return self.source.line_col(self.start)[0] != self.source.line_col(max(self.start, self.end - 1))[0]

    def indexes(self, value: str) -> list[int] | None:
        """Source index of every character of ``value``; None when replaying
        the scalar does not give back exactly ``value`` (then no guess)."""
        text = self.source.text
        try:
            if self.style in ("|", ">"):
                digits = [c for c in text[self.start + 1 : self.start + 3] if c.isdigit()]
                # an explicit indentation indicator counts from the parent's
                # indentation, which a scalar does not know: try each
                tries: Any = range(int(digits[0]), 200) if digits else [None]
                for indent in tries:
                    chars = _block_chars(text, self.start, indent)
                    if "".join(c for c, _ in chars) == value:
                        return [k for _, k in chars]
                return None
            chars = list(_flow_chars(text, self.start, self.end, self.style))
        except (ValueError, IndexError, OverflowError):
            return None
        if "".join(c for c, _ in chars) != value:
            return None
        return [k for _, k in chars]

    def position(self, value: str, offset: int) -> tuple[int, int] | None:
        indexes = self.indexes(value)
        if indexes is None:
            return None
        if not indexes:
            return self.source.line_col(self.start)
        if offset >= len(indexes):
            # the end of the condition: just after its last character
            line, col = self.source.line_col(indexes[-1])
            return line, col + 1
        return self.source.line_col(indexes[max(offset, 0)])


def scalar_start(text: str, start: int) -> int:
    """Index of a scalar's own first character, past a tag or anchor and the
    spaces, line breaks and comments that may follow them."""
    i, n = start, len(text)
    while i < n and text[i] in "!&":
        while i < n and text[i] not in " \t" + _BREAKS:
            i += 1
        while i < n and (text[i] in " \t" + _BREAKS or text[i] == "#"):
            if text[i] == "#":
                while i < n and text[i] not in _BREAKS:
                    i += 1
            else:
                i += 1
    return i


# --- reading the event stream ------------------------------------------------------
