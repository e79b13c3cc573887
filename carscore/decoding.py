"""Patient file bytes as UTF-8 text, or the sentence saying why the file
cannot be read as text at all.

Patient files come from Excel and hospital systems, not from one writer:

* encodings: UTF-8 (with or without a byte-order mark), UTF-16 with its
  byte-order mark (little or big endian), and Windows-1252 (cp1252: what
  Excel writes on Windows) for files that are not UTF-8. Valid UTF-8 is
  never decoded again as something else: a file that is UTF-8 except for a
  few bytes keeps its UTF-8 text and only those bytes are read as cp1252. Any
  decoding other than UTF-8 is said in a note naming the file.
* line ends: LF, CRLF, or lone CR (old Mac Excel); lone CR line ends become LF.
* an Excel workbook, a Parquet or PDF file, or an empty file is refused with
  a sentence saying what it is.
"""

from __future__ import annotations

import codecs
import re

from carscore.errors import InputProblem

# cp1252 leaves five bytes undefined; Windows maps them to the C1 controls of
# the same code, and so does this table: decoding never fails.
_CP1252 = "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "an Excel workbook (.xlsx) or another zip file; save it from Excel as CSV",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls); save it from Excel as CSV",
    b"PAR1": "a Parquet file",
    b"%PDF": "a PDF file",
}


class FileProblem(Exception):
    """The whole file cannot be read: the sentence of its InputProblem. Raised
    here, and by carscore.csvfile for a header row that cannot be read."""

    def __init__(self, message: str, row: int = 0, column: str = "", value: str = ""):
        super().__init__(message)
        self.message, self.row, self.column, self.value = message, row, column, value

    def problem(self, name: str) -> InputProblem:
        return InputProblem(name, self.message, self.row, self.column, self.value)


def decode_file(raw: bytes) -> tuple[bytes, list[str]]:
    """The file as UTF-8 bytes without a byte-order mark, with LF or CRLF
    line ends, and notes on how it was decoded when that was not plain UTF-8.
    Raises FileProblem for an empty file or one holding binary data."""
    if not raw or raw.isspace():
        raise FileProblem("the file is empty")
    for signature, what in _BINARY_SIGNATURES.items():
        if raw.startswith(signature):
            raise FileProblem(f"not a CSV file (it holds binary data: {what})")
    data, notes = _decode(raw)
    data = _line_ends(data)
    if not data or data.isspace():
        raise FileProblem("the file is empty")
    return data, notes


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
                raise FileProblem(f"starts with a {label} byte-order mark but cannot be read as {label}: {exc.reason}") from None
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
