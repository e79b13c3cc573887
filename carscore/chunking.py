"""Patient files cut into bounded chunks that never split a patient, so that a
registry-sized cohort is assessed with memory bounded by the chunk, not the
cohort.

A chunk is a list of pieces; a piece is one source's header with a run of its
records. Small files go whole, several to a chunk. A file larger than a chunk
is streamed: read a block at a time and cut at a line where patient_id
changes (outside any quoted cell), so every course and every patient of a
file grouped by patient lands in one piece. Each piece knows the line of the
file its first record came from, so every message names the file's own row.

What cannot be cut is read whole, as before: a file whose patient_id column
cannot be placed from its header, a file that is not UTF-8 (its decoding is
decided on the whole file), or one with lone-CR line ends. Whether a file
really is grouped by patient is seen only when its pieces are read; the
chunked assessment checks it (carscore.chunked).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from carscore.contract import Contract
from carscore.csvfile import prepare_file
from carscore.decoding import FileProblem
from carscore.errors import InputProblem
from carscore.headers import ColumnMap, plan_columns
from carscore.parquetin import is_parquet, parquet_as_csv_file
from carscore.sources import Source, file_bytes

# the first block read of a file to find its header, its delimiter and its encoding
_HEAD_BYTES = 1 << 16


@dataclass
class Piece:
    """One source's header and a run of its records, read as a file of its own."""

    source: Source  # named as the file it comes from: messages name that file
    file_order: int  # the file's place among all sources (input order)
    line_offset: int = 0  # added to a record's line in the piece: its line in the file
    header_lines: int = 1  # lines of the header (kept as they are: never offset)
    whole: bool = True  # the whole file, not a piece of a streamed one
    # a piece of a partitioned file: the file's line of each of its lines after the header
    line_map: Any = None


@dataclass
class Chunk:
    pieces: list[Piece] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)  # files that could not be read at all

    @property
    def size(self) -> int:
        return sum(len(p.source.data) for p in self.pieces)


def chunks(
    sources: list[Source],
    contract: Contract,
    chunk_bytes: int,
    column_map: dict[str, str] | None = None,
    ignore_unknown: bool = False,
) -> Iterator[Chunk]:
    """The sources in input order as chunks of about ``chunk_bytes`` each."""
    current = Chunk()
    for order, src in enumerate(sources):
        size = len(src.data) if src.path is None else _size(src.path)
        if src.path is not None and size is not None and size > chunk_bytes:
            if current.pieces or current.problems:
                yield current
                current = Chunk()
            with _as_text_file(src) as (text_source, problem):
                streamed = (
                    None
                    if text_source is None
                    else _streamed(text_source, order, contract, chunk_bytes, column_map, ignore_unknown)
                )
                if problem is not None:
                    yield Chunk([], [problem])
                    continue
                if streamed is not None:
                    for piece in streamed:
                        yield Chunk([piece])
                    continue
        if src.path is None:
            data, problem = src.data, None
        else:
            data, problem = file_bytes(src.path, src.name)
        if problem is not None:
            current.problems.append(problem)
            continue
        current.pieces.append(Piece(Source(src.name, data), order))
        if current.size >= chunk_bytes:
            yield current
            current = Chunk()
    if current.pieces or current.problems:
        yield current


def _size(path: str) -> int | None:
    import os

    try:
        return os.path.getsize(path)
    except OSError:
        return None


@contextmanager
def _as_text_file(src: Source) -> Iterator[tuple[Source | None, InputProblem | None]]:
    """The source as a file of text rows: a large Parquet file is written out
    as CSV first (in bounded memory), and read under its own name."""
    assert src.path is not None
    try:
        with open(src.path, "rb") as f:
            head = f.read(4)
    except OSError:
        yield src, None  # named when it is read whole
        return
    if not is_parquet(head):
        yield src, None
        return
    with parquet_as_csv_file(src.name, src.path) as (temporary, problem):
        yield (Source(src.name, b"", path=temporary) if temporary else None), problem


def _streamed(
    src: Source, order: int, contract: Contract, chunk_bytes: int, column_map: dict[str, str] | None, ignore_unknown: bool
) -> Iterator[Piece] | None:
    """The pieces of a large file, or None when it must be read whole."""
    assert src.path is not None
    try:
        with open(src.path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError:
        return None  # named when it is read whole
    layout = _layout(src.name, head, contract, column_map, ignore_unknown)
    if layout is None:
        return None
    return _cut(src, order, layout, chunk_bytes)


@dataclass
class _Layout:
    header: bytes  # the header's lines, with their line ends
    header_lines: int
    delim: bytes
    patient_position: int


def _layout(
    name: str, head: bytes, contract: Contract, column_map: dict[str, str] | None, ignore_unknown: bool
) -> _Layout | None:
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        return None  # a byte-order mark or UTF-16: decoded as a whole
    last_line_end = head.rfind(b"\n")
    if last_line_end < 0:
        return None
    try:
        head[: last_line_end + 1].decode("utf-8")
    except UnicodeDecodeError:
        return None  # not plain UTF-8: its decoding is decided on the whole file
    if b"\r" in head.replace(b"\r\n", b""):
        return None  # lone CR line ends (old Mac Excel) are turned into LF on the whole file
    try:
        prep = prepare_file(Source(name, head[: last_line_end + 1]), 0)
    except FileProblem:
        return None
    plan = plan_columns(prep.cells, contract, ColumnMap(column_map, contract), ignore_unknown)
    positions = [pos for pos, column in plan.keep.items() if column == "patient_id"]
    if plan.errors or len(positions) != 1:
        return None
    header_end = _line_start(head, prep.first)
    if header_end is None:
        return None
    return _Layout(head[:header_end], prep.first, prep.delim.encode(), positions[0])


def _line_start(data: bytes, n: int) -> int | None:
    """The offset where physical line n (0-based) starts."""
    at = 0
    for _ in range(n):
        nl = data.find(b"\n", at)
        if nl < 0:
            return None
        at = nl + 1
    return at


def _cut(src: Source, order: int, layout: _Layout, chunk_bytes: int) -> Iterator[Piece]:
    assert src.path is not None
    first_line = layout.header_lines + 1  # the file's line of the first record of the next piece
    position = len(layout.header)
    with open(src.path, "rb") as f:
        want = chunk_bytes
        while True:
            f.seek(position)
            block = f.read(want)
            if len(block) < want:  # the end of the file
                if block:
                    yield _piece(src, order, layout, block, first_line)
                return
            cut = _patient_boundary(block, layout)
            if cut is None:
                want *= 2  # one patient longer than the block: read more at once
                continue
            # the piece is made straight from the block (one copy of 16 MB, not two)
            yield _piece(src, order, layout, memoryview(block)[:cut], first_line)
            first_line += block.count(b"\n", 0, cut)
            position += cut
            want = chunk_bytes


def partitioned(
    src: Source, order: int, contract: Contract, chunk_bytes: int, column_map: dict[str, str] | None, ignore_unknown: bool
) -> Iterator[Chunk]:
    """A large file found not grouped by patient (a patient in two of its
    pieces), as chunks dealt by patient."""
    with _as_text_file(src) as (text_source, problem):
        if problem is not None or text_source is None:
            yield Chunk([], [problem] if problem else [])
            return
        yield from _dealt(text_source, order, contract, chunk_bytes, column_map, ignore_unknown)


def _dealt(
    src: Source, order: int, contract: Contract, chunk_bytes: int, column_map: dict[str, str] | None, ignore_unknown: bool
) -> Iterator[Chunk]:
    """A file not grouped by patient, its lines dealt by a hash of patient_id
    into temporary files of about a chunk each (so a patient's rows meet in
    one), each read as a piece that keeps every line's own number. A file
    with quoted cells cannot be dealt line by line: it is read whole."""
    import numpy as np
    import polars as pl

    assert src.path is not None
    with open(src.path, "rb") as f:
        layout = _layout(src.name, f.read(_HEAD_BYTES), contract, column_map, ignore_unknown)
    size = _size(src.path) or 0
    if layout is None or _has_quote(src.path):
        data, problem = file_bytes(src.path, src.name)
        yield Chunk([] if problem else [Piece(Source(src.name, data), order)], [problem] if problem else [])
        return
    buckets = max(2, -(-size // chunk_bytes))
    folder = tempfile.mkdtemp(prefix="carscore-")
    files = [open(os.path.join(folder, f"{b}.csv"), "wb") for b in range(buckets)]  # noqa: SIM115 - closed below
    lines_of: list[list[Any]] = [[] for _ in range(buckets)]
    try:
        first_line = layout.header_lines + 1
        with open(src.path, "rb") as f:
            f.seek(len(layout.header))
            rest = b""
            while True:
                block = f.read(chunk_bytes)
                data = rest + block
                end = data.rfind(b"\n") + 1 if block else len(data)
                if not data:
                    break
                records, rest = data[:end], data[end:]
                lines = records.split(b"\n")
                if records.endswith(b"\n"):
                    lines.pop()
                frame = pl.DataFrame({"line": pl.Series(lines, dtype=pl.Binary)})
                patient = (
                    pl.col("line")
                    .cast(pl.String, strict=False)
                    .str.split(layout.delim.decode())
                    .list.get(layout.patient_position, null_on_oob=True)
                    .str.strip_chars()
                )
                dealt = frame.with_columns(
                    (patient.hash(seed=0) % buckets).fill_null(0).alias("bucket"),
                    (pl.int_range(pl.len()) + first_line).alias("at"),
                )
                for (bucket,), group in dealt.group_by("bucket"):
                    files[bucket].write(b"\n".join(group["line"].to_list()) + b"\n")
                    lines_of[bucket].append(group["at"].to_numpy())
                first_line += len(lines)
                if not block:
                    break
        for handle in files:
            handle.close()
        for b in range(buckets):
            if not lines_of[b]:
                continue
            with open(os.path.join(folder, f"{b}.csv"), "rb") as handle:
                records = handle.read()
            line_map = np.concatenate(lines_of[b])
            piece = Piece(Source(src.name, layout.header + records), order, 0, layout.header_lines, False, line_map)
            yield Chunk([piece])
    finally:
        for handle in files:
            handle.close()
        shutil.rmtree(folder, ignore_errors=True)


def _has_quote(path: str) -> bool:
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            if b'"' in block:
                return True
    return False


def _piece(src: Source, order: int, layout: _Layout, records: bytes | memoryview, first_line: int) -> Piece:
    data = b"".join((layout.header, records))
    return Piece(Source(src.name, data), order, first_line - (layout.header_lines + 1), layout.header_lines, whole=False)


def _patient_boundary(buffer: bytes, layout: _Layout) -> int | None:
    """The offset just after the last line of the buffer whose patient differs
    from the next line's, outside any quoted cell; None if there is none."""
    end = buffer.rfind(b"\n")
    if end < 0:
        return None
    later: bytes | None = None  # the patient of the line after the candidate cut
    stop = end
    quotes_before = buffer.count(b'"', 0, end + 1) if b'"' in buffer else 0
    while stop > 0:
        start = buffer.rfind(b"\n", 0, stop) + 1
        line = buffer[start:stop]
        patient = _patient(line, layout)
        cut = stop + 1
        if later is not None and patient is not None and patient != later and quotes_before % 2 == 0:
            return cut
        if patient is not None:
            later = patient
        # quotes on this line are not before the next candidate cut
        quotes_before -= line.count(b'"')
        stop = start - 1
    return None


def _patient(line: bytes, layout: _Layout) -> bytes | None:
    """The patient_id cell of one physical line, or None when the line cannot be
    read alone (a quoted cell running over lines) or is blank."""
    line = line.rstrip(b"\r")
    if not line.strip():
        return None
    if b'"' not in line:
        cells = line.split(layout.delim)
    else:
        if line.count(b'"') % 2:
            return None
        try:
            cells = [c.encode() for c in next(csv.reader(io.StringIO(line.decode("utf-8")), delimiter=layout.delim.decode()))]
        except (csv.Error, UnicodeDecodeError, StopIteration):
            return None
    if layout.patient_position >= len(cells):
        return None
    value = cells[layout.patient_position].strip()
    return value or None
