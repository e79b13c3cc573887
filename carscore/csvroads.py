"""One file's rows (or those of many files sharing one header) read into a
frame of text cells by position (``c0``, ``c1``, ...), each row keeping its
file and the physical line it starts on, malformed rows marked.

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
read record by record in Python (carscore.csvlines), each keeping the
physical line it starts on, each malformed record named and the others read.
"""

from __future__ import annotations

import polars as pl

from carscore.contract import Contract
from carscore.csvfile import PreparedFile
from carscore.csvlines import PhysicalLines, Record, record_at, well_formed_pattern
from carscore.headers import ColumnPlan

# The columns every frame carries besides its cells (their meaning: carscore.csvread).
FILE, LINE = "_file", "_line"
MALFORMED, MALFORMED_COLUMN, MALFORMED_VALUE = "_malformed", "_malformed_column", "_malformed_value"


def _fast(prep: PreparedFile, plan: ColumnPlan, contract: Contract) -> pl.DataFrame | None:
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
    return bool(quoted.str.contains(well_formed_pattern(delim)).all())


def _cut_short(data: bytes, delim: str, plan: ColumnPlan) -> bool:
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


def _careful(prep: PreparedFile, plan: ColumnPlan) -> pl.DataFrame:
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
        (~body.str.contains(well_formed_pattern(delim))).alias("q_special"),
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

    py_lines = PhysicalLines(lines)
    import numpy as np

    consumed = np.zeros(len(lines), dtype=bool)
    records: list[Record] = []
    for i in sorted(set(special)):
        if consumed[i]:
            continue  # a line inside a quoted cell that started above
        rec = record_at(py_lines, i, delim, width)
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
            rest = [record_at(py_lines, i, delim, width) for i in ordinary["i"].to_list()]
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


def _python_rows(records: list[Record], prep: PreparedFile, width: int) -> pl.DataFrame:
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


def _cut_short_sentence(cells: int, named: int) -> str:
    return (
        f"malformed CSV row: the file ends in the middle of this row ({cells} of {named} cells, no line end); it looks cut short"
    )


def read_together(members: list[PreparedFile], plan: ColumnPlan, contract: Contract) -> pl.DataFrame | None:
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
    joined = PreparedFile(-1, "", head + b"".join(bodies), members[0].delim, members[0].cells, 0, 1, [], False, False)
    frame = _fast(joined, plan, contract)
    if frame is None or frame.height != sum(counts):
        return None
    import numpy as np

    files = np.repeat(np.asarray([m.index for m in members], dtype=np.uint32), counts)
    lines = np.concatenate([np.arange(2, n + 2, dtype=np.uint32) for n in counts])
    return frame.with_columns(pl.Series(FILE, files), pl.Series(LINE, lines))


def read_alone(prep: PreparedFile, plan: ColumnPlan, contract: Contract) -> pl.DataFrame:
    """One file's rows: on the clean road, or on the careful one when the clean one cannot be trusted."""
    frame = _fast(prep, plan, contract)
    if frame is None:
        frame = _careful(prep, plan)
    return frame.with_columns(pl.lit(prep.index, dtype=pl.UInt32).alias(FILE))
