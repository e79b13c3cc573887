"""Reading CSV bytes into tables of text cells, each row keeping its file
and line, with every file, header and row that cannot be read named.

This module reads the sources as a whole: files sharing a header are read
together, and their cells by position become contract columns. The steps
before live in their own modules:

* carscore.decoding: bytes to text (encodings, byte-order marks, line ends);
* carscore.csvfile: a file's delimiter and header row;
* carscore.headers: header names to contract columns (``fold``,
  ``suggestions``, ``parse_column_map``);
* carscore.csvroads: the rows read on the clean road or the careful one;
* carscore.csvlines: the careful road's record-by-record reader.

What is settled here
--------------------
* Semicolon files come from locales that write decimal commas: there,
  ``38,5`` in a number column is read as 38.5 (and ``1.234,5`` as 1234.5).
  A number such as ``1.234`` in a file that elsewhere writes decimal commas
  could be 1.234 or 1234: its row is refused (see ``_malformed``), never
  guessed.
* Excel's trailing empty columns (header ``a,b,,,``): columns without a name
  that are empty everywhere are dropped; one that holds data is a problem
  naming its position (or, with ``ignore_unknown``, a note).
* blank lines and rows of empty cells (``,,,``) anywhere are skipped.

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

from collections.abc import Callable, Iterable
from pathlib import Path

import polars as pl

from carscore.contract import Contract
from carscore.csvfile import PreparedFile, prepare_file
from carscore.csvroads import FILE, LINE, MALFORMED, MALFORMED_COLUMN, MALFORMED_VALUE, read_alone, read_together
from carscore.decoding import FileProblem
from carscore.errors import InputProblem
from carscore.headers import DAY, ColumnMap, ColumnPlan, fold, parse_column_map, plan_columns, suggestions
from carscore.sources import Source

# Importable from here, where callers have always found them.
__all__ = [
    "FILE",
    "LINE",
    "MALFORMED",
    "MALFORMED_COLUMN",
    "MALFORMED_VALUE",
    "fold",
    "parse_column_map",
    "read_frames",
    "FileNotes",
    "suggestions",
]

PATIENT, INFUSION = "patient_id", "infusion"

# Rows named one by one as malformed before the whole file is refused: a file
# where most rows are malformed is misread as a whole (a wrong delimiter).
MAX_MALFORMED_SHARE = 0.5
MIN_MALFORMED_TO_REFUSE = 20
# Files named one by one for the same header problem before a summary line.
MAX_FILES_PER_HEADER_PROBLEM = 20


def _blank(name: str, dtype: pl.DataType) -> pl.Expr:
    c = pl.col(name)
    return c.is_null() | (c.str.strip_chars() == "") if dtype == pl.String else c.is_null()


def _drop_empty_rows(frame: pl.DataFrame, plan: ColumnPlan) -> pl.DataFrame:
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


def _decimal_commas(frame: pl.DataFrame, plan: ColumnPlan, contract: Contract) -> tuple[pl.DataFrame, pl.Series]:
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
    plan: ColumnPlan,
    members: list[PreparedFile],
    contract: Contract,
    ignore_unknown: bool,
    problems: list[InputProblem],
    notes: FileNotes,
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


def _attribute_malformed(frame: pl.DataFrame, by_index: dict[int, PreparedFile], problems: list[InputProblem]) -> pl.DataFrame:
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


class FileNotes:
    """Notes by message, each naming its files: one file, or a few and a count."""

    def __init__(self) -> None:
        self._files: dict[str, list[str]] = {}

    def pairs(self) -> list[tuple[str, str]]:
        """(file, message) as added: a chunked read renders the notes of all its chunks at once."""
        return [(name, message) for message, files in self._files.items() for name in files]

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


def read_frames(
    sources: list[Source],
    contract: Contract,
    on_file: Callable[[], None] | None = None,
    *,
    column_map: dict[str, str] | None = None,
    ignore_unknown: bool = False,
    note_pairs: list[tuple[str, str]] | None = None,
) -> tuple[list[pl.DataFrame], list[InputProblem], list[str]]:
    """Every readable source as a table of cells named by contract column
    (numbers already parsed where the file is clean), with _file (index into
    sources), _line and the _malformed columns (see the module docstring).

    column_map: header (as written or folded) -> contract column, or "" to
    leave the column out; raises UsageError for a target that is not a
    contract column. ignore_unknown: headers near a contract column, °F
    temperatures and unnamed columns with data are left out with a note,
    instead of stopping their file. note_pairs: given, it also gets the notes
    as (file, message), before they are grouped by message."""
    mapping = ColumnMap(column_map, contract)
    problems: list[InputProblem] = []
    notes = FileNotes()
    frames: list[pl.DataFrame] = []

    def tick() -> None:
        if on_file is not None:
            on_file()

    groups: dict[tuple[str, ...], list[PreparedFile]] = {}
    for i, src in enumerate(sources):
        try:
            prep = prepare_file(src, i)
        except FileProblem as exc:
            problems.append(exc.problem(src.name))
            tick()
            continue
        notes.extend(src.name, prep.notes)
        groups.setdefault(prep.header_key, []).append(prep)

    alone: list[tuple[PreparedFile, ColumnPlan]] = []
    for members in groups.values():
        plan = plan_columns(members[0].cells, contract, mapping, ignore_unknown)
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
        together = read_together(members, plan, contract) if len(members) > 1 else None
        if together is None:
            alone.extend((m, plan) for m in members)
            continue
        frame = _finish(together, plan, members, contract, ignore_unknown, problems, notes)
        if frame is not None:
            frames.append(frame)
        for _ in members:
            tick()
    for prep, plan in sorted(alone, key=lambda p: p[0].index):
        frame = _finish(read_alone(prep, plan, contract), plan, [prep], contract, ignore_unknown, problems, notes)
        if frame is not None:
            frames.append(frame)
        tick()
    for key in mapping.unused():
        notes.add("--column", f"no file has a column '{key}'")
    if note_pairs is not None:
        note_pairs.extend(notes.pairs())
    return frames, problems, notes.render()
