"""Reading CSV bytes into tables of text cells, each row keeping its file
and line, with every file, header and row that cannot be read named.

What a file may look like
-------------------------
Patient files come from Excel and hospital systems, not from one writer:

* encodings: UTF-8 (with or without a byte-order mark), UTF-16 with its
  byte-order mark (little or big endian), and Windows-1252 (cp1252: what
  Excel writes on Windows) for files that are not UTF-8. Valid UTF-8 is
  never decoded again as something else: a file that is UTF-8 except for a
  few bytes keeps its UTF-8 text and only those bytes are read as cp1252. Any
  decoding other than UTF-8 is said in a note naming the file.
* line ends: LF, CRLF, or lone CR (old Mac Excel).
* delimiters: comma, semicolon, tab or pipe, detected from the header line
  (or an Excel ``sep=;`` first line). A delimiter other than comma is said in
  a note. Semicolon files come from locales that write decimal commas: there,
  ``38,5`` in a number column is read as 38.5 (and ``1.234,5`` as 1234.5).
  A number such as ``1.234`` in a file that elsewhere writes decimal commas
  could be 1.234 or 1234: its row is refused (see ``_malformed``), never
  guessed.
* Excel's trailing empty columns (header ``a,b,,,``): columns without a name
  that are empty everywhere are dropped; one that holds data is a problem
  naming its position (or, with ``ignore_unknown``, a note).
* blank lines and rows of empty cells (``,,,``) anywhere are skipped.

Header names
------------
A header names a contract column when it equals the column name after
folding case, surrounding spaces, and runs of inner spaces, hyphens and
underscores to one ``_`` (``Temp C`` and ``TEMP-C`` are ``temp_c``). Anything
else is either *far* from every column (dropped, with a note), or *near* one
(within edit distance 2 of a column name, 1 when either name has four
letters or fewer so that ``site`` is not taken for ``time``; a common
clinical alias such as ``temperature`` or ``mrn``; or a column name with a
unit suffix such as ``ferritin_ng_ml``). A near header is never read as the column it resembles:
it is a problem naming the header and its likely meaning, and the file is
not read, unless the caller maps it (``column_map``) or asks to leave unknown
columns out (``ignore_unknown``, a note then lists them). A header that says
degrees Fahrenheit is never read as ``temp_c``, even when mapped.

The clean road and the careful road
-----------------------------------
A clean file (the usual case) is read by polars in one call, with numbers
parsed by the reader where the file allows it; the checks around it are
whole-buffer byte scans, never per-row Python. The file's rows then map one
to one onto its physical lines, which is verified by counting line ends
against the rows read. When the fast read fails, or the line count does not
match (a quoted cell holding a line break, an unterminated quote), or a quote
mark is out of place (checked by a regular expression over the lines holding
quotes), or the file holds a NUL byte, or its last line may be cut short,
the file is read again on the careful road: its lines are sorted with polars
expressions, the ordinary ones read together by polars, and only the others
read record by record in Python, each keeping the physical line it starts
on, each malformed record named and the others read.

The returned tables
-------------------
Each frame has String cells (Float64 for number columns on the clean road)
named by contract column, plus:

``_file``   UInt32, index of the source in ``sources``.
``patient_id``  always present: a file without that column takes its file
            name (without extension), as the contract says.
``_line``   UInt32, the physical line the row starts on in its file (the
            header is line 1; correct after quoted multi-line cells, blank
            lines and an Excel ``sep=`` line).
``_malformed``  String: null on a good row; on a row that could not be read
            as CSV (more cells than the header, a stray or unmatched quote
            mark, a NUL byte, a last row cut short, an ambiguous number in a
            decimal-comma file) a sentence saying what is wrong, without file
            or line (the caller adds them). The row still carries the cells
            that could be read, always including ``patient_id`` when the file
            has that column (a row whose patient cannot be told is not in the
            frame: it is returned as a problem naming file and line instead).
            ``infusion`` may be blank on such a row: it can then belong to any
            infusion of its patient. The caller must not grade any course the
            row may belong to, and must not report its cells one by one
            (they may be misaligned).
``_malformed_column``, ``_malformed_value``  String: the header name and the
            cell as written that the problem concerns, when it concerns one
            cell (null otherwise).
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from carscore.contract import Contract
from carscore.errors import InputProblem, UsageError
from carscore.sources import Source

FILE, LINE = "_file", "_line"
MALFORMED, MALFORMED_COLUMN, MALFORMED_VALUE = "_malformed", "_malformed_column", "_malformed_value"
DAY, PATIENT, INFUSION = "day", "patient_id", "infusion"

# A quoted cell may hold line breaks (notes); one running over more lines
# than this is taken for an unmatched quote, which keeps the careful road
# linear on a file full of stray quote marks.
MAX_CELL_LINES = 50
# Rows named one by one as malformed before the whole file is refused: a file
# where most rows are malformed is misread as a whole (a wrong delimiter).
MAX_MALFORMED_SHARE = 0.5
MIN_MALFORMED_TO_REFUSE = 20
# Files named one by one for the same header problem before a summary line.
MAX_FILES_PER_HEADER_PROBLEM = 20

_DELIMITERS = {",": "commas", ";": "semicolons (;)", "\t": "tabs", "|": "vertical bars (|)"}
_DELIMITER_WORD = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}

# cp1252 leaves five bytes undefined; Windows maps them to the C1 controls of
# the same code, and so does this table: decoding never fails.
_CP1252 = "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "an Excel workbook (.xlsx) or another zip file; save it from Excel as CSV",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls); save it from Excel as CSV",
    b"PAR1": "a Parquet file",
    b"%PDF": "a PDF file",
}


class _FileProblem(Exception):
    """The whole file cannot be read: the sentence of its InputProblem."""

    def __init__(self, message: str, row: int = 0, column: str = "", value: str = ""):
        super().__init__(message)
        self.message, self.row, self.column, self.value = message, row, column, value

    def problem(self, name: str) -> InputProblem:
        return InputProblem(name, self.message, self.row, self.column, self.value)


# --------------------------------------------------------------------------- decoding


def _decode(raw: bytes) -> tuple[bytes, list[str]]:
    """The file as UTF-8 bytes without a byte-order mark, and notes on how it
    was decoded when that was not plain UTF-8."""
    for bom, codec, label in (
        (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
        (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
        (b"\xff\xfe", "utf-16-le", "UTF-16 (little-endian)"),
        (b"\xfe\xff", "utf-16-be", "UTF-16 (big-endian)"),
    ):
        if raw.startswith(bom):
            try:
                text = raw[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise _FileProblem(f"starts with a {label} byte-order mark but cannot be read as {label}: {exc.reason}") from None
            return text.encode("utf-8"), [f"read as {label} (the file starts with its byte-order mark)"]
    # UTF-16 without a byte-order mark: ASCII header letters alternate with
    # zero bytes. Read as binary data otherwise.
    if len(raw) >= 4 and len(raw) % 2 == 0 and b"\x00" not in raw[:4:2] and raw[1:4:2] == b"\x00\x00":
        guessed = _try_decode(raw, "utf-16-le")
        if guessed is not None:
            return guessed.encode("utf-8"), ["read as UTF-16 (little-endian): no byte-order mark, guessed from its zero bytes"]
    if len(raw) >= 4 and len(raw) % 2 == 0 and raw[0:4:2] == b"\x00\x00" and b"\x00" not in raw[1:4:2]:
        guessed = _try_decode(raw, "utf-16-be")
        if guessed is not None:
            return guessed.encode("utf-8"), ["read as UTF-16 (big-endian): no byte-order mark, guessed from its zero bytes"]

    data = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    if data.isascii():
        return data, []
    try:
        data.decode("utf-8")
        return data, []
    except UnicodeDecodeError:
        pass
    # Not UTF-8 as a whole. Invalid bytes become lone surrogates; when every
    # byte above ASCII is invalid the file simply is cp1252. When some are
    # valid multi-byte UTF-8, the file mixes both: the UTF-8 text is kept as
    # it is, only the invalid bytes are read as cp1252.
    text = data.decode("utf-8", errors="surrogateescape")
    invalid = [m.start() for m in re.finditer("[\udc80-\udcff]", text)]
    non_ascii = len(data) - len(data.translate(None, bytes(range(128, 256))))
    if len(invalid) == non_ascii:
        decoded, _ = codecs.charmap_decode(data, "strict", _CP1252)
        return decoded.encode("utf-8"), ["not UTF-8; read as Windows-1252 (cp1252)"]
    first_line = text.count("\n", 0, invalid[0]) + 1
    fixed = re.sub("[\udc80-\udcff]", lambda m: _CP1252[ord(m.group()) - 0xDC00], text)
    places = "1 place" if len(invalid) == 1 else f"{len(invalid)} places"
    return fixed.encode("utf-8"), [
        f"not valid UTF-8 in {places} (first on row {first_line}); those bytes read as Windows-1252 (cp1252), "
        "the rest of the file as UTF-8"
    ]


def _try_decode(raw: bytes, codec: str) -> str | None:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        return None


def _line_ends(data: bytes) -> bytes:
    """Files whose lines end with a lone CR (Mac Excel) get LF line ends. Only
    the line end of the first line decides: in an LF or CRLF file a lone CR is
    a character inside a cell, not a line end."""
    cr = data.find(b"\r")
    if cr < 0 or data[cr + 1 : cr + 2] == b"\n":
        return data
    lf = data.find(b"\n")
    if lf >= 0 and lf < cr:
        return data
    return re.sub(rb"\r(?!\n)", b"\n", data)


# --------------------------------------------------------------------------- records


@dataclass
class _Record:
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


def _tokenize(lines: list[str], start: int, delim: str, width: int) -> _Record:
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

    def unmatched() -> _Record:
        return _Record(start + 1, cells, _UNMATCHED_QUOTE, span_column, span_value, lines=1)

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
            return _Record(start + 1, cells, lines=i - start + 1)
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
                    return _Record(start + 1, cells, _AFTER_QUOTE, len(cells), _cell_text(line, cell_start, delim))
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
            return _Record(start + 1, cells, _STRAY_QUOTE, len(cells), _cell_text(line, cell_start, delim))
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


def _well_formed_pattern(delim: str) -> str:
    """A physical line that is one complete record: quote marks only around
    whole cells, doubled inside them. Valid both for Python re and polars."""
    d = f"\\x{ord(delim):02x}"
    cell = f'(?:"[^"]*(?:""[^"]*)*"|[^"{d}]*)'
    return f"^{cell}(?:{d}{cell})*\\r?$"


class _Lines:
    """Physical lines held by polars; a Python string is made only for a line
    the careful road reads itself."""

    def __init__(self, series: pl.Series):
        self.series = series

    def __len__(self) -> int:
        return self.series.len()

    def __getitem__(self, i: int) -> str:
        return self.series[i]


def _record_at(lines: _Lines, i: int, delim: str, width: int) -> _Record:
    """The record that starts on physical line index i, read in Python."""
    raw = _chomp(lines[i])
    if '"' not in raw:
        rec = _Record(i + 1, list(raw.split(delim)))
    else:
        rec = _tokenize(lines, i, delim, width)  # type: ignore[arg-type]
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
                f"(a {_DELIMITER_WORD[delim]} inside a cell that is not in quotes?)"
            )
        # empty cells past the header's last column hold nothing: dropped
        rec.cells = rec.cells[:width]
    return rec


def _cut_short_sentence(cells: int, named: int) -> str:
    return (
        f"malformed CSV row: the file ends in the middle of this row ({cells} of {named} cells, no line end); it looks cut short"
    )


def _mark_nul(rec: _Record) -> None:
    for k, cell in enumerate(rec.cells):
        if cell is not None and "\x00" in cell:
            if rec.error is None:
                rec.error = "malformed CSV row: it holds a NUL byte (binary data)"
                rec.column, rec.value = k, cell.replace("\x00", "\\0")
            rec.cells[k] = None


# --------------------------------------------------------------------------- headers


def fold(name: str) -> str:
    """A header as carscore compares it: case, surrounding spaces and runs of
    inner spaces, hyphens and underscores folded (``Temp C`` -> ``temp_c``)."""
    return re.sub(r"[\s\-_]+", "_", name.strip().strip("\ufeff").strip().lower())


def _loose(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_ALIAS_TABLE = """
patient_id: patient patientid patientno patientnumber patientnr pt ptid mrn subject subjectid usubjid caseid pid
infusion: infusionno infusionnumber infusionnum infusionnr infusionn inf infno infusionid
day: daynumber dayno daynr studyday daypostinfusion dayspostinfusion dayssinceinfusion daysinceinfusion
day: dayfrominfusion daysfrominfusion postinfusionday
time: clocktime assessmenttime timeofday
age_years: age ageyrs agey ageatinfusion
temp_c: temp temperature tempmax tmax maxtemp maxtemperature temperaturemax bodytemp bodytemperature
temp_c: tempcelsius temperaturec temperaturecelsius tempdegc
hypotension: hypotensive lowbp
sbp: systolic systolicbp sysbp bpsystolic systolicpressure sbpmin minsbp
vasopressors: vasopressor pressor pressors nvasopressors numvasopressors vasopressorcount numberofvasopressors
o2_device: o2 oxygen o2delivery oxygendevice oxygendelivery o2support respiratorysupport
o2_flow_lpm: o2flow oxygenflow flowlpm o2lpm o2lmin o2flowrate
fio2_pct: fio2 fio2percent
antipyretics: antipyretic paracetamol acetaminophen
tocilizumab: toci tocilizumb tcz actemra antiil6
corticosteroids: steroids steroid corticosteroid dexamethasone dex methylprednisolone
other_anticytokine: anakinra siltuximab anticytokine
ice_score: ice icetotal icescores icepoints
capd_score: capd capdtotal
consciousness: loc levelofconsciousness consciousnesslevel consciouslevel
seizure: seizures
cerebral_edema: cerebraloedema edema oedema
il6: interleukin6
crp: creactiveprotein
wbc: leukocytes whitecells whitebloodcells whitecellcount
anc: neutrophils absoluteneutrophilcount neut neutrophilcount
platelets: plt plts platelet plateletcount
hemoglobin: hb hgb haemoglobin
fibrinogen: fib
alt_u_l: alt
ast_u_l: ast
ldh_u_l: ldh
bm_blasts_pct: bmblasts marrowblasts blasts
bm_mrd_pct: mrd bmmrd
pb_blasts_pct: pbblasts peripheralblasts blasts
car_copies: carcopies cartcopies transgenecopies
b_cells_pct: bcells cd19 cd19pct
"""


def _aliases(table: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for row in table.strip().splitlines():
        column, spellings = row.split(":")
        for spelling in spellings.split():
            out[spelling] = (*out.get(spelling, ()), column.strip())
    return out


# Spellings met in clinical exports, loosely folded (letters and digits only),
# with the contract columns they probably mean. Suggestions only: a header
# found here is an error until the user maps it. Targets missing from the
# contract are skipped.
_ALIASES = _aliases(_ALIAS_TABLE)

# Unit words after a column name (``ferritin_ng_ml``, ``tocilizumab_mg``).
_UNIT_WORDS = set(
    "mg g l ml dl ul ng pg ug mcg u iu mmhg mmol umol pct percent x10 x10e9 x10e12 10e9 10e12 9 12 lpm min kg c per "
    "total max value result count dose".split()
)
_FAHRENHEIT = re.compile(r"fahrenheit|°_?f\b|(temp|temperature|tmax|fever)[a-z_]*?_?\(?(deg_?)?f\)?$|(^|_)t_?\(?°?f\)?$")


def _is_fahrenheit(folded: str) -> bool:
    return bool(_FAHRENHEIT.search(folded))


def _distance(a: str, b: str, limit: int) -> int:
    """Edit distance with transpositions (optimal string alignment), cut off
    above `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def suggestions(header: str, contract: Contract) -> list[str]:
    """Contract columns a header that is not one probably means, most likely
    first; empty when it is far from all of them."""
    folded = fold(header)
    if not folded or folded in contract.columns:
        return []
    loose = _loose(folded)
    found = [c for c in _ALIASES.get(loose, ()) if c in contract.columns]
    found += [c for c in contract.columns if _loose(c) == loose and c not in found]
    for c in contract.columns:
        rest = folded[len(c) + 1 :] if folded.startswith(c + "_") else None
        if rest and c not in found and all(w in _UNIT_WORDS for w in rest.split("_")):
            found.append(c)
    if not found:
        # short names are spelled alike by chance (site/time, age/anc): they
        # only count as near with one edit
        scored = []
        for c in contract.columns:
            limit = 1 if min(len(folded), len(c)) <= 4 else 2
            d = _distance(folded, c, limit)
            if d <= limit:
                scored.append((d, c))
        found = [c for _, c in sorted(scored)]
    if _is_fahrenheit(folded):
        found = [c for c in found if c != "temp_c"]
    return found


@dataclass
class _Plan:
    """What to do with each header cell of one header."""

    width: int
    named: int  # cells up to the last one with a name
    keep: dict[int, str] = field(default_factory=dict)  # position -> contract column
    unnamed: list[int] = field(default_factory=list)
    errors: list[InputProblem] = field(default_factory=list)  # file name filled in per file
    notes: list[str] = field(default_factory=list)


class ColumnMap:
    """The user's mapping of header names (as written or folded) to contract
    columns; an empty target leaves the column out."""

    def __init__(self, column_map: dict[str, str] | None, contract: Contract):
        self.targets: dict[str, str] = {}
        self.written: dict[str, str] = {}
        self.used: set[str] = set()
        for key, target in (column_map or {}).items():
            k, t = fold(key), fold(target)
            if not k:
                raise UsageError(f"--column '{key}={target}': the column name before '=' is empty")
            if t and t not in contract.columns:
                near = suggestions(t, contract)
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise UsageError(f"--column '{key}={target}': '{target}' is not a carscore column{hint}")
            if k in self.targets and self.targets[k] != t:
                raise UsageError(f"--column '{key}': given twice, as {self.targets[k] or 'left out'} and as {t or 'left out'}")
            self.targets[k] = t
            self.written.setdefault(k, key)

    def get(self, header: str) -> str | None:
        k = fold(header)
        if k in self.targets:
            self.used.add(k)
            return self.targets[k]
        return None

    def unused(self) -> list[str]:
        return [self.written[k] for k in self.targets if k not in self.used]


def parse_column_map(options: Iterable[str], contract: Contract) -> dict[str, str]:
    """``--column 'Temp C=temp_c'`` options as a column_map for read_frames
    (the last '=' splits, so a header may hold one). Raises UsageError."""
    mapping: dict[str, str] = {}
    for option in options:
        if "=" not in option:
            raise UsageError(f"--column '{option}': write it as 'HEADER=column' (e.g. --column 'Temp C=temp_c')")
        key, target = option.rsplit("=", 1)
        mapping[key.strip()] = target.strip()
    ColumnMap(mapping, contract)  # validates
    return mapping


def _plan(cells: list[str], contract: Contract, mapping: ColumnMap, ignore_unknown: bool) -> _Plan:
    width = len(cells)
    named = max((k + 1 for k, c in enumerate(cells) if fold(c)), default=0)
    plan = _Plan(width, named)
    taken: dict[str, int] = {}  # contract column -> position
    near: list[tuple[int, str, list[str]]] = []
    fahrenheit: list[tuple[int, str]] = []
    far: list[str] = []
    left_out: list[str] = []
    asked_out: list[str] = []

    def take(pos: int, target: str, header: str, how: str) -> None:
        if target in taken:
            other = cells[taken[target]].strip()
            if how == "named" and fold(other) == target:
                message = f"the column '{target}' appears twice in the header"
            else:
                message = (
                    f"two columns would both be read as {target}: '{other}' (column {taken[target] + 1}) and "
                    f"'{header.strip()}' (column {pos + 1}); which one holds the data? Rename or remove one of them"
                )
            plan.errors.append(InputProblem("", message, 1, target if how == "named" else header.strip()))
            return
        taken[target] = pos
        plan.keep[pos] = target

    # mapped headers first, then headers that are contract names, so that a
    # clash names both cells whatever their order
    mapped: dict[int, str] = {}
    for pos, header in enumerate(cells):
        target = mapping.get(header) if fold(header) else None
        if target is None:
            continue
        mapped[pos] = target
        if target == "":
            asked_out.append(header.strip())
        elif target == "temp_c" and _is_fahrenheit(fold(header)):
            plan.errors.append(
                InputProblem(
                    "",
                    "cannot be read as temp_c: its name says degrees Fahrenheit and temp_c is in °C; "
                    "convert the values to °C in a temp_c column",
                    1,
                    header.strip(),
                )
            )
        else:
            take(pos, target, header, "mapped")
    for pos, header in enumerate(cells):
        f = fold(header)
        if pos in mapped:
            continue
        if not f:
            plan.unnamed.append(pos)
        elif f in contract.columns:
            take(pos, f, header, "named")
        elif _is_fahrenheit(f):
            fahrenheit.append((pos, header.strip()))
        elif near_to := suggestions(header, contract):
            near.append((pos, header.strip(), near_to))
        else:
            far.append(header.strip())

    for _, header in fahrenheit:
        if ignore_unknown:
            left_out.append(f"{header} (°F)")
        else:
            plan.errors.append(
                InputProblem(
                    "",
                    "a temperature in degrees Fahrenheit, it seems: carscore reads temp_c, in °C only; convert the "
                    "values to °C in a temp_c column, or pass --ignore-unknown-columns to leave this column out",
                    1,
                    header,
                )
            )
    for _, header, near_to in near:
        if ignore_unknown:
            left_out.append(f"{header} ({' or '.join(near_to)}?)")
            continue
        meant = " or ".join(_with_unit(c, contract) for c in near_to)
        plan.errors.append(
            InputProblem(
                "",
                f"not a carscore column; did you mean {meant}? Map it with --column '{header}={near_to[0]}' "
                "or pass --ignore-unknown-columns",
                1,
                header,
            )
        )
    if DAY not in taken and not any(DAY in n for _, _, n in near):
        # only this: the other header remarks mean little on a file that is
        # not a patient file (an infusions table in the cohort folder)
        shown = ", ".join(c.strip() for c in cells[:8]) + (" ..." if len(cells) > 8 else "")
        plan.errors = [InputProblem("", f"no 'day' column: this is not a carscore patient file (header: {shown})", 1)]
    if far:
        plan.notes.append(f"ignored columns that carscore does not use: {', '.join(far)}")
    if left_out:
        plan.notes.append(f"left out columns that carscore does not read (--ignore-unknown-columns): {', '.join(left_out)}")
    if asked_out:
        plan.notes.append(f"left out as asked (--column): {', '.join(asked_out)}")
    return plan


def _with_unit(column: str, contract: Contract) -> str:
    unit = contract.columns[column].unit
    return f"{column} ({unit})" if unit else column


# --------------------------------------------------------------------------- one file, prepared


@dataclass
class _Prepared:
    index: int
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


def _prepare(src: Source, index: int) -> _Prepared:
    raw = src.data
    if not raw or raw.isspace():
        raise _FileProblem("the file is empty")
    for signature, what in _BINARY_SIGNATURES.items():
        if raw.startswith(signature):
            raise _FileProblem(f"not a CSV file (it holds binary data: {what})")
    data, notes = _decode(raw)
    data = _line_ends(data)
    if not data or data.isspace():
        raise _FileProblem("the file is empty")
    # lines are sliced out, never split off: splitting copies the whole buffer
    first_line = _line_at(data, 0)
    if b"\x00" in first_line:
        raise _FileProblem("not a CSV file (it holds binary data)")

    if b'"' in first_line or first_line[:4].lower() == b"sep=":
        delim, cells, skip, first = _header(data)
    else:
        delim, cells = _plain_header(first_line)
        skip, first = 0, 1
    if delim != ",":
        notes.append(f"cells separated by {_DELIMITERS.get(delim, repr(delim))}")
    return _Prepared(index, src.name, data, delim, list(cells), skip, first, notes, b'"' in data, b"\x00" in data)


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
    rec = _tokenize(data[:end].decode("utf-8").split("\n"), skip, delim, 0)
    if rec.error is not None:
        raise _FileProblem(f"the header row: {rec.error.removeprefix('malformed CSV row: ')}", skip + 1)
    return delim, [c or "" for c in rec.cells], skip, skip + rec.lines


# --------------------------------------------------------------------------- reading


def _line_at(data: bytes, n: int) -> bytes:
    """Physical line n (0-based) without its LF; empty past the end."""
    start = 0
    for _ in range(n):
        start = data.find(b"\n", start) + 1
        if start == 0:
            return b""
    end = data.find(b"\n", start)
    return data[start:] if end < 0 else data[start:end]


def _fast(prep: _Prepared, plan: _Plan, contract: Contract) -> pl.DataFrame | None:
    """The clean road: one polars read, numbers parsed by the reader when the
    file is comma- or tab-separated and clean. None when the file needs the
    careful road."""
    if prep.has_nul:
        return None
    names = [f"c{k}" for k in range(plan.width)]
    numeric = {f"c{k}": pl.Float64 for k, c in plan.keep.items() if contract.columns[c].numeric} if prep.delim != ";" else {}
    options = {"separator": prep.delim, "infer_schema": False, "new_columns": names, "truncate_ragged_lines": False}
    if prep.skip:
        options["skip_rows"] = prep.skip
    frame = None
    for overrides in [numeric, {}] if numeric else [{}]:
        try:
            frame = pl.read_csv(prep.data, schema_overrides=overrides, **options)  # type: ignore[arg-type]
            break
        except Exception as exc:  # noqa: BLE001 - a cell that is not a number, or malformed CSV
            # only a cell that is not a number is worth reading again as text
            # (the word is polars': should it change, the text read simply
            # fails too and the file still takes the careful road)
            if "dtype" not in str(exc):
                return None
    if frame is None:
        return None
    data = prep.data
    physical = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    # polars keeps blank lines as empty rows, so one row per line is what a
    # file without multi-line cells or swallowed lines gives
    if frame.height != physical - prep.first or frame.width != plan.width:
        return None
    if prep.has_quote and not _quotes_well_formed(data, prep.delim):
        return None
    if not data.endswith(b"\n") and frame.height and _cut_short(data, prep.delim, plan):
        return None
    start = prep.first + 1
    return frame.with_columns(
        (pl.int_range(pl.len(), dtype=pl.UInt32) + start).alias(LINE),
        pl.lit(None, dtype=pl.String).alias(MALFORMED),
        pl.lit(None, dtype=pl.String).alias(MALFORMED_COLUMN),
        pl.lit(None, dtype=pl.String).alias(MALFORMED_VALUE),
    )


def _quotes_well_formed(data: bytes, delim: str) -> bool:
    """Every line holding a quote mark is a complete record with quotes only
    around whole cells (checked by polars' regex engine, not per row in Python)."""
    lines = pl.Series("line", [data.decode("utf-8")]).str.split("\n").explode()
    quoted = lines.filter(lines.str.contains('"', literal=True))
    return bool(quoted.str.contains(_well_formed_pattern(delim)).all())


def _cut_short(data: bytes, delim: str, plan: _Plan) -> bool:
    """Whether the last line (without a line end) has fewer cells than the
    header and than the line before it: the careful road then names it."""
    end = data.rfind(b"\n")
    tail = data[end + 1 :]
    if b'"' in tail:
        return True  # counted properly on the careful road
    last = tail.count(delim.encode()) + 1
    if end > 0:
        before = data[data.rfind(b"\n", 0, end) + 1 : end].count(delim.encode()) + 1
    else:
        before = plan.width
    return last < plan.named and last < before


def _careful(prep: _Prepared, plan: _Plan) -> pl.DataFrame:
    """The careful road, each row with the physical line it starts on.

    Lines are sorted with polars expressions first: ordinary lines (no NUL,
    no more cells than the header, quotes only around whole cells) are read
    together by polars; only the others (a quoted cell running over lines, a
    stray quote, a NUL, too many cells, a last line without its line end)
    are read in Python, record by record. A file with one bad row among a
    million is then read at nearly the speed of a clean one."""
    delim, width = prep.delim, plan.width
    text = prep.data.decode("utf-8")
    ends_with_newline = text.endswith("\n")
    lines = pl.Series("text", [text]).str.split("\n").explode()
    del text
    if ends_with_newline:
        lines = lines.slice(0, lines.len() - 1)  # the empty string after the last line end
    body = pl.col("body")
    table = (
        pl.DataFrame({"text": lines})
        .with_row_index("i")
        .slice(prep.first)
        .select("i", pl.col("text").str.strip_suffix("\r").alias("body"))
        .filter(body.str.strip_chars(delim + " \t") != "")  # blank lines and rows of empty cells
        .with_columns(
            (body.str.count_matches(delim, literal=True) + 1).alias("cells"),
            body.str.contains("\x00", literal=True).alias("special"),
        )
    )
    # lines with quote marks (usually few): cells counted outside quoted
    # cells, and special unless quotes stand only around whole cells
    quoted = table.filter(body.str.contains('"', literal=True)).select(
        "i",
        (body.str.replace_all(r'"[^"]*(?:""[^"]*)*"', "").str.count_matches(delim, literal=True) + 1).alias("q_cells"),
        (~body.str.contains(_well_formed_pattern(delim))).alias("q_special"),
    )
    if quoted.height:
        table = table.join(quoted, on="i", how="left", maintain_order="left").with_columns(
            pl.coalesce("q_cells", "cells").alias("cells"),
            (pl.col("special") | pl.col("q_special").fill_null(False)).alias("special"),
        )
    table = table.with_columns(pl.col("special") | (pl.col("cells") > width))
    special = table.filter(pl.col("special"))["i"].to_list()
    if not ends_with_newline and table.height:
        special.append(table["i"][-1])  # counted in Python: cut short?

    py_lines = _Lines(lines)
    consumed = np.zeros(len(lines), dtype=bool)
    records: list[_Record] = []
    for i in sorted(set(special)):
        if consumed[i]:
            continue  # a line inside a quoted cell that started above
        rec = _record_at(py_lines, i, delim, width)
        consumed[i : i + rec.lines] = True
        records.append(rec)
    # a last row with fewer cells than the header and than the row before it,
    # with no line end after it: the file was cut short while being written
    if not ends_with_newline and records and records[-1].line == table["i"][-1] + 1 and records[-1].error is None:
        last = records[-1]
        before = table["cells"][-2] if table.height > 1 else width
        if len(last.cells) < plan.named and len(last.cells) < before:
            last.error = _cut_short_sentence(len(last.cells), plan.named)

    ordinary = table.filter(~pl.Series(consumed[table["i"].to_numpy()]))
    frames = [_python_rows(records, prep, width)]
    if ordinary.height:
        bulk = _ordinary_rows(ordinary, delim, width)
        if bulk is None:  # polars disagrees with the sorting above: read them in Python too
            rest = [_record_at(py_lines, i, delim, width) for i in ordinary["i"].to_list()]
            frames.append(_python_rows(rest, prep, width))
        else:
            frames.append(bulk)
    return pl.concat(frames, how="vertical").sort(LINE)


def _ordinary_rows(ordinary: pl.DataFrame, delim: str, width: int) -> pl.DataFrame | None:
    """Ordinary lines read by polars in one call, under a header of position
    names (which also fixes the width when the first line is short)."""
    names = [f"c{k}" for k in range(width)]
    buffer = delim.join(names) + "\n" + ordinary["body"].str.join("\n").item() + "\n"
    try:
        frame = pl.read_csv(buffer.encode("utf-8"), separator=delim, infer_schema=False, truncate_ragged_lines=False)
    except Exception:  # noqa: BLE001 - any disagreement: the caller reads these lines in Python
        return None
    if frame.height != ordinary.height or frame.columns != names:
        return None
    return frame.with_columns(
        (ordinary["i"].cast(pl.UInt32) + 1).alias(LINE),
        pl.lit(None, dtype=pl.String).alias(MALFORMED),
        pl.lit(None, dtype=pl.String).alias(MALFORMED_COLUMN),
        pl.lit(None, dtype=pl.String).alias(MALFORMED_VALUE),
    )


def _python_rows(records: list[_Record], prep: _Prepared, width: int) -> pl.DataFrame:
    columns: list[list[str | None]] = [[] for _ in range(width)]
    lines, errors, err_cols, err_vals = [], [], [], []
    for rec in records:
        cells = rec.cells
        for k in range(width):
            columns[k].append(cells[k] if k < len(cells) else None)
        lines.append(rec.line)
        errors.append(rec.error)
        err_cols.append(_column_label(prep.cells, rec.column) if rec.error is not None and rec.column >= 0 else None)
        err_vals.append(rec.value if rec.error is not None and rec.value else None)
    data: dict[str, pl.Series] = {f"c{k}": pl.Series(f"c{k}", columns[k], dtype=pl.String) for k in range(width)}
    data[LINE] = pl.Series(LINE, lines, dtype=pl.UInt32)
    data[MALFORMED] = pl.Series(MALFORMED, errors, dtype=pl.String)
    data[MALFORMED_COLUMN] = pl.Series(MALFORMED_COLUMN, err_cols, dtype=pl.String)
    data[MALFORMED_VALUE] = pl.Series(MALFORMED_VALUE, err_vals, dtype=pl.String)
    return pl.DataFrame(data)


def _column_label(cells: list[str], k: int) -> str:
    if k < len(cells) and cells[k].strip():
        return cells[k].strip()
    return f"column {k + 1}"


def _blank(name: str, dtype: pl.DataType) -> pl.Expr:
    c = pl.col(name)
    return c.is_null() | (c.str.strip_chars() == "") if dtype == pl.String else c.is_null()


def _drop_empty_rows(frame: pl.DataFrame, plan: _Plan) -> pl.DataFrame:
    """Blank lines and rows of empty cells (Excel writes ',,,' for rows it
    once formatted) hold nothing: dropped. Only rows with a blank day are
    looked at closely, so a clean file pays one column scan."""
    cols = [f"c{k}" for k in range(plan.width)]
    day = next((f"c{k}" for k, c in plan.keep.items() if c == DAY), cols[0])
    # a malformed row is never dropped, even when none of its cells could be read
    suspects = frame.with_row_index("_row").filter(_blank(day, frame.schema[day]) & pl.col(MALFORMED).is_null())
    if suspects.height == 0:
        return frame
    empty = suspects.filter(pl.all_horizontal([_blank(c, frame.schema[c]) for c in cols]))["_row"]
    if empty.len() == 0:
        return frame
    return frame.with_row_index("_row").filter(~pl.col("_row").is_in(empty.implode())).drop("_row")


_DECIMAL_COMMA = r"^\s*[+-]?\d*,\d+\s*$"
_GROUPED_COMMA = r"^\s*[+-]?\d{1,3}(\.\d{3})+,\d+\s*$"  # 1.234,5
_GROUPED_DOT = r"^\s*[+-]?[1-9]\d{0,2}(\.\d{3})+\s*$"  # 1.234: 1.234 or 1234?


def _decimal_commas(frame: pl.DataFrame, plan: _Plan, contract: Contract) -> tuple[pl.DataFrame, pl.Series]:
    """Semicolon files write decimal commas: read them as points in number
    columns. A number grouped with dots (1.234) in a file that writes decimal
    commas is ambiguous: its row is marked malformed, never guessed.
    Returns the frame and the file indexes where decimal commas were read."""
    numeric = [(f"c{k}", c) for k, c in plan.keep.items() if contract.columns[c].numeric and frame.schema[f"c{k}"] == pl.String]
    if not numeric:
        return frame, pl.Series(FILE, [], dtype=pl.UInt32)
    comma = [pl.col(c).str.contains(_DECIMAL_COMMA) | pl.col(c).str.contains(_GROUPED_COMMA) for c, _ in numeric]
    frame = frame.with_columns(pl.any_horizontal(comma).fill_null(False).any().over(FILE).alias("_commas"))
    read = frame.filter(pl.col("_commas"))[FILE].unique()
    if read.len() == 0:
        return frame.drop("_commas"), read
    ambiguous = [(pl.col("_commas") & pl.col(c).str.contains(_GROUPED_DOT)).fill_null(False) for c, _ in numeric]
    sentence = (
        "a number written with a dot in a file that writes decimal commas: is it a decimal point or a "
        "thousands separator? Write it with a decimal comma, or without the dot"
    )
    marks = [
        pl.coalesce(pl.col(MALFORMED), pl.when(pl.any_horizontal(ambiguous)).then(pl.lit(sentence))).alias(MALFORMED),
        pl.coalesce(
            pl.col(MALFORMED_COLUMN),
            pl.coalesce([pl.when(a).then(pl.lit(plan_label)) for a, plan_label in zip(ambiguous, [n for _, n in numeric])]),
        ).alias(MALFORMED_COLUMN),
        pl.coalesce(
            pl.col(MALFORMED_VALUE), pl.coalesce([pl.when(a).then(pl.col(c)) for a, (c, _) in zip(ambiguous, numeric)])
        ).alias(MALFORMED_VALUE),
    ]
    frame = frame.with_columns(marks)
    converted = [
        pl.when(pl.col("_commas") & pl.col(c).str.contains(_GROUPED_COMMA))
        .then(pl.col(c).str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
        .when(pl.col("_commas") & pl.col(c).str.contains(_DECIMAL_COMMA))
        .then(pl.col(c).str.replace(",", ".", literal=True))
        .otherwise(pl.col(c))
        .alias(c)
        for c, _ in numeric
    ]
    return frame.with_columns(converted).drop("_commas"), read


def _finish(
    frame: pl.DataFrame,
    plan: _Plan,
    members: list[_Prepared],
    contract: Contract,
    ignore_unknown: bool,
    problems: list[InputProblem],
    notes: _Notes,
) -> pl.DataFrame | None:
    """From positional cells to contract columns: empty rows dropped, unnamed
    columns checked, decimal commas read, malformed rows attributed."""
    by_index = {m.index: m for m in members}
    frame = _drop_empty_rows(frame, plan)

    # a column without a name that holds data: which column is it?
    for k in plan.unnamed:
        c = f"c{k}"
        held = frame.filter(~_blank(c, frame.schema[c])).select(FILE, LINE, c)
        if held.height == 0:
            continue
        for f, line, value in held.unique(subset=[FILE], keep="first", maintain_order=True).iter_rows():
            if ignore_unknown:
                notes.add(by_index[f].name, f"left out column {k + 1}, which has no name in the header but holds data")
            else:
                problems.append(
                    InputProblem(
                        by_index[f].name,
                        f"column {k + 1} has no name in the header but holds data (first on row {line}); name it in the "
                        "header, or pass --ignore-unknown-columns to leave it out",
                        1,
                        "",
                        _shown(value),
                    )
                )
        if not ignore_unknown:
            bad = set(held[FILE].unique().to_list())
            frame = frame.filter(~pl.col(FILE).is_in(list(bad)))
            members = [m for m in members if m.index not in bad]
            if not members:
                return None

    if members[0].delim == ";":
        frame, read = _decimal_commas(frame, plan, contract)
        for f in read.to_list():
            notes.add(by_index[f].name, "decimal commas read as decimal points (38,5 = 38.5)")

    keep = [pl.col(f"c{k}").alias(c) for k, c in sorted(plan.keep.items())]
    frame = frame.select(keep + [FILE, LINE, MALFORMED, MALFORMED_COLUMN, MALFORMED_VALUE])
    if PATIENT not in frame.columns:
        # a single-patient file without patient_id takes its file name
        stems = {m.index: Path(m.name).stem or m.name for m in members}
        if len(stems) == 1:
            frame = frame.with_columns(pl.lit(next(iter(stems.values()))).alias(PATIENT))
        else:
            frame = frame.with_columns(
                pl.col(FILE).replace_strict(list(stems), list(stems.values()), return_dtype=pl.String).alias(PATIENT)
            )

    present = set(frame[FILE].unique().to_list())
    for m in members:
        if m.index not in present:
            problems.append(InputProblem(m.name, "the file has a header but no rows"))
    if frame.select(pl.col(MALFORMED).is_not_null().any()).item():
        frame = _attribute_malformed(frame, by_index, problems)
    return frame if frame.height else None


def _shown(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _attribute_malformed(frame: pl.DataFrame, by_index: dict[int, _Prepared], problems: list[InputProblem]) -> pl.DataFrame:
    """Malformed rows stay in the frame when their patient can be told, so
    that the caller refuses that patient's course. Rows whose patient cannot
    be told become problems. A file with mostly malformed rows is refused
    whole: it is misread as a whole, and row-by-row messages would bury that."""
    bad = pl.col(MALFORMED).is_not_null()
    counts = frame.group_by(FILE).agg(pl.len().alias("n"), bad.sum().alias("bad"))
    for f, n, nbad in counts.iter_rows():
        if nbad >= MIN_MALFORMED_TO_REFUSE and nbad > MAX_MALFORMED_SHARE * n:
            first = frame.filter((pl.col(FILE) == f) & bad).row(0, named=True)
            problems.append(
                InputProblem(
                    by_index[f].name,
                    f"{nbad} of {n} rows cannot be read as CSV (first on row {first[LINE]}: "
                    f"{first[MALFORMED].removeprefix('malformed CSV row: ')}); is the delimiter right? "
                    "The file is not read",
                )
            )
            frame = frame.filter(pl.col(FILE) != f)
    patient = pl.col(PATIENT)
    lost = frame.filter(bad & (patient.is_null() | (patient.str.strip_chars() == "")))
    for row in lost.iter_rows(named=True):
        problems.append(
            InputProblem(
                by_index[row[FILE]].name,
                f"{row[MALFORMED]}; whose row it is cannot be told, so it is left out",
                row[LINE],
                row[MALFORMED_COLUMN] or "",
                row[MALFORMED_VALUE] or "",
            )
        )
    if lost.height:
        frame = frame.filter(~(bad & (patient.is_null() | (patient.str.strip_chars() == ""))))
    return frame


# --------------------------------------------------------------------------- many files


class _Notes:
    """Notes by message, each naming its files: one file, or a few and a count."""

    def __init__(self) -> None:
        self._files: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        files = self._files.setdefault(message, [])
        if not files or files[-1] != name:
            files.append(name)

    def extend(self, name: str, messages: Iterable[str]) -> None:
        for m in messages:
            self.add(name, m)

    def render(self) -> list[str]:
        out = []
        for message, files in self._files.items():
            if len(files) == 1:
                who = files[0]
            elif len(files) <= 3:
                who = ", ".join(files[:-1]) + " and " + files[-1]
            else:
                who = f"{files[0]}, {files[1]} and {len(files) - 2:,} other files"
            out.append(f"{who}: {message}")
        return out


def _read_together(members: list[_Prepared], plan: _Plan, contract: Contract) -> pl.DataFrame | None:
    """Many small files with one header (one file per patient) read as one
    table: the bodies joined in memory, each row keeping its file and line.
    None when anything does not line up; the files are then read one by one."""
    bodies, counts = [], []
    for m in members:
        if m.has_quote or m.has_nul or m.first != 1 or m.skip:
            return None
        body = m.data.split(b"\n", 1)[1] if b"\n" in m.data else b""
        if not body.strip():
            return None
        if not body.endswith(b"\n"):
            if _cut_short(m.data, m.delim, plan):
                return None
            body += b"\n"
        bodies.append(body)
        counts.append(body.count(b"\n"))
    head = members[0].data.split(b"\n", 1)[0].rstrip(b"\r") + b"\n"
    joined = _Prepared(-1, "", head + b"".join(bodies), members[0].delim, members[0].cells, 0, 1, [], False, False)
    frame = _fast(joined, plan, contract)
    if frame is None or frame.height != sum(counts):
        return None
    files = np.repeat(np.asarray([m.index for m in members], dtype=np.uint32), counts)
    lines = np.concatenate([np.arange(2, n + 2, dtype=np.uint32) for n in counts])
    return frame.with_columns(pl.Series(FILE, files), pl.Series(LINE, lines))


def _read_alone(prep: _Prepared, plan: _Plan, contract: Contract) -> pl.DataFrame:
    frame = _fast(prep, plan, contract)
    if frame is None:
        frame = _careful(prep, plan)
    return frame.with_columns(pl.lit(prep.index, dtype=pl.UInt32).alias(FILE))


def read_frames(
    sources: list[Source],
    contract: Contract,
    on_file: Callable[[], None] | None = None,
    *,
    column_map: dict[str, str] | None = None,
    ignore_unknown: bool = False,
) -> tuple[list[pl.DataFrame], list[InputProblem], list[str]]:
    """Every readable source as a table of cells named by contract column
    (numbers already parsed where the file is clean), with _file (index into
    sources), _line and the _malformed columns (see the module docstring).

    column_map: header (as written or folded) -> contract column, or "" to
    leave the column out; raises UsageError for a target that is not a
    contract column. ignore_unknown: headers near a contract column, °F
    temperatures and unnamed columns with data are left out with a note,
    instead of stopping their file."""
    mapping = ColumnMap(column_map, contract)
    problems: list[InputProblem] = []
    notes = _Notes()
    frames: list[pl.DataFrame] = []

    def tick() -> None:
        if on_file is not None:
            on_file()

    groups: dict[tuple[str, ...], list[_Prepared]] = {}
    for i, src in enumerate(sources):
        try:
            prep = _prepare(src, i)
        except _FileProblem as exc:
            problems.append(exc.problem(src.name))
            tick()
            continue
        notes.extend(src.name, prep.notes)
        groups.setdefault(prep.header_key, []).append(prep)

    alone: list[tuple[_Prepared, _Plan]] = []
    for members in groups.values():
        plan = _plan(members[0].cells, contract, mapping, ignore_unknown)
        if plan.errors:
            for n, m in enumerate(members):
                if n == MAX_FILES_PER_HEADER_PROBLEM:
                    problems.append(
                        InputProblem(m.name, f"... and {len(members) - n} more files with the same header are not read either", 1)
                    )
                    break
                problems.extend(InputProblem(m.name, e.message, e.row, e.column, e.value) for e in plan.errors)
            for _ in members:
                tick()
            continue
        for m in members:
            notes.extend(m.name, plan.notes)
        together = _read_together(members, plan, contract) if len(members) > 1 else None
        if together is None:
            alone.extend((m, plan) for m in members)
            continue
        frame = _finish(together, plan, members, contract, ignore_unknown, problems, notes)
        if frame is not None:
            frames.append(frame)
        for _ in members:
            tick()
    for prep, plan in sorted(alone, key=lambda p: p[0].index):
        frame = _finish(_read_alone(prep, plan, contract), plan, [prep], contract, ignore_unknown, problems, notes)
        if frame is not None:
            frames.append(frame)
        tick()
    for key in mapping.unused():
        notes.add("--column", f"no file has a column '{key}'")
    return frames, problems, notes.render()
