"""Reading CSV bytes into tables of text cells, each row keeping its file
and line, with every file that cannot be read named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from carscore.compile import DAY
from carscore.contract import Contract
from carscore.errors import InputProblem
from carscore.sources import Source

FILE, LINE = "_file", "_line"


def _usable_bytes(src: Source, problems: list[InputProblem]) -> bytes | None:
    data = src.data
    if not data.strip():
        problems.append(InputProblem(src.name, "the file is empty"))
        return None
    if b"\x00" in data[:4096]:
        problems.append(InputProblem(src.name, "not a CSV file (it holds binary data)"))
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        data = data.decode("latin-1").encode("utf-8")
    return data


def _header_text(data: bytes) -> str:
    return data.split(b"\n", 1)[0].decode("utf-8", "replace").strip("\r")


def _csv_frame(data: bytes, contract: Contract) -> pl.DataFrame:
    """Clean files take the fast road: numbers parsed by the CSV reader itself.
    Any unreadable number sends the file down the text road, where every bad
    cell is found and named."""
    header = data.split(b"\n", 1)[0].decode("utf-8").strip("\r")
    numeric = {
        h: pl.Float64 for h in _split_header(header) if (c := contract.columns.get(h.strip().lower())) is not None and c.numeric
    }
    if numeric:
        try:
            return pl.read_csv(data, infer_schema=False, schema_overrides=numeric, truncate_ragged_lines=False)
        except Exception:  # noqa: BLE001 - any failure: read again as text
            pass
    return pl.read_csv(data, infer_schema=False, truncate_ragged_lines=False)


def _shape(frame: pl.DataFrame, name: str, problems: list[InputProblem], header: str) -> pl.DataFrame | None:
    seen: set[str] = set()
    for n in (h.strip().lower() for h in _split_header(header)):
        if n in seen:
            problems.append(InputProblem(name, f"the column '{n}' appears twice in the header", 1, n))
            return None
        seen.add(n)
    names = [c.strip().lower() for c in frame.columns]
    frame.columns = names
    if DAY not in names:
        header = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
        problems.append(InputProblem(name, f"no 'day' column: this is not a carscore patient file (header: {header})", 1))
        return None
    if frame.height == 0:
        problems.append(InputProblem(name, "the file has a header but no rows"))
        return None
    return frame


def _read_one(src: Source, index: int, problems: list[InputProblem], contract: Contract) -> pl.DataFrame | None:
    data = _usable_bytes(src, problems)
    if data is None:
        return None
    try:
        frame = _csv_frame(data, contract)
    except Exception as exc:  # polars raises several error types for malformed CSV
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problems.append(InputProblem(src.name, f"cannot be read as CSV: {first}"))
        return None
    frame = _shape(frame, src.name, problems, _header_text(data))
    if frame is None:
        return None
    extra = [pl.lit(index, dtype=pl.UInt32).alias(FILE), (pl.int_range(pl.len(), dtype=pl.UInt32) + 2).alias(LINE)]
    if "patient_id" not in frame.columns:
        extra.append(pl.lit(Path(src.name).stem or src.name).alias("patient_id"))
    return frame.with_columns(extra)


def _read_together(group: list[int], sources: list[Source], contract: Contract) -> pl.DataFrame | None:
    """Many small files with one header (one file per patient) read as one
    table: the bodies joined in memory, each row keeping its file and line.
    None when anything does not line up; the files are then read one by one."""
    header = None
    bodies, counts = [], []
    for i in group:
        data = sources[i].data
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        head, _, body = data.partition(b"\n")
        body = body.replace(b"\r\n", b"\n").rstrip(b"\n")
        if not body or b'"' in body or b"\n\n" in body or b"\x00" in body:
            return None
        header = head
        bodies.append(body)
        counts.append(body.count(b"\n") + 1)
    try:
        frame = _csv_frame(header.rstrip(b"\r") + b"\n" + b"\n".join(bodies) + b"\n", contract)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001
        return None
    if frame.height != sum(counts):
        return None
    frame = _shape(frame, sources[group[0]].name, [], _header_text(header))  # type: ignore[arg-type]
    if frame is None:
        return None
    files = np.repeat(np.asarray(group, dtype=np.uint32), counts)
    lines = np.concatenate([np.arange(2, n + 2, dtype=np.uint32) for n in counts])
    extra = [pl.Series(FILE, files), pl.Series(LINE, lines)]
    if "patient_id" not in frame.columns:
        stems = [Path(sources[i].name).stem or sources[i].name for i in group]
        extra.append(pl.Series("patient_id", np.repeat(np.asarray(stems, dtype=object), counts).tolist()))
    return frame.with_columns(extra)


def _split_header(line: str) -> list[str]:
    import csv

    return next(csv.reader([line]), [])


def read_frames(
    sources: list[Source], contract: Contract, on_file: Callable[[], None] | None = None
) -> tuple[list[pl.DataFrame], list[InputProblem], list[str]]:
    """Every readable source as a table of text cells (numbers already parsed
    where the file is clean), with _file (index into sources) and _line."""
    problems: list[InputProblem] = []
    notes: list[str] = []
    frames: list[pl.DataFrame] = []

    def keep(frame: pl.DataFrame, name: str) -> None:
        unknown = [c for c in frame.columns if c not in contract.columns and not c.startswith("_")]
        if unknown:
            notes.append(f"{name}: ignored columns that carscore does not use: {', '.join(unknown)}")
        frames.append(frame.select([c for c in frame.columns if c in contract.columns or c in (FILE, LINE)]))

    by_header: dict[bytes, list[int]] = {}
    for i, src in enumerate(sources):
        by_header.setdefault(src.data.split(b"\n", 1)[0], []).append(i)
    alone: list[int] = []
    for group in by_header.values():
        together = _read_together(group, sources, contract) if len(group) > 1 else None
        if together is None:
            alone.extend(group)
            continue
        keep(together, sources[group[0]].name)
        if on_file is not None:
            for _ in group:
                on_file()
    for i in sorted(alone):
        frame = _read_one(sources[i], i, problems, contract)
        if on_file is not None:
            on_file()
        if frame is not None:
            keep(frame, sources[i].name)
    return frames, problems, notes
