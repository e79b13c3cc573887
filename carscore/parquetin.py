"""Patient rows in a Parquet file (registry extracts), read as the CSV rows
they hold, so that every check and message of a CSV file applies: the first
record is row 2, as if the header were row 1.

A Parquet file is recognised by its signature (the bytes "PAR1"), whatever
its name. Its columns keep their written values: numbers as numbers, true and
false as words carscore reads, blanks as blank cells.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from carscore.errors import InputProblem

SIGNATURE = b"PAR1"


def is_parquet(head: bytes) -> bool:
    return head[:4] == SIGNATURE


def parquet_as_csv(name: str, data: bytes) -> tuple[bytes, InputProblem | None]:
    """The file's rows as CSV bytes, or the problem that stops reading it."""
    import polars as pl

    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # a damaged or truncated file: named, never a traceback
        return b"", InputProblem(name, f"cannot be read as Parquet: {_short(exc)}")
    return frame.write_csv().encode("utf-8"), None


@contextmanager
def parquet_as_csv_file(name: str, path: str) -> Iterator[tuple[str | None, InputProblem | None]]:
    """A large Parquet file written out as a temporary CSV file (batch by batch,
    in bounded memory) for the chunked reader; removed afterwards."""
    import polars as pl

    handle, temporary = tempfile.mkstemp(prefix="carscore-", suffix=".csv")
    os.close(handle)
    try:
        try:
            pl.scan_parquet(path).sink_csv(temporary)
        except Exception as exc:
            yield None, InputProblem(name, f"cannot be read as Parquet: {_short(exc)}")
            return
        yield temporary, None
    finally:
        os.unlink(temporary)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
