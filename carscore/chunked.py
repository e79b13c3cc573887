"""A cohort assessed chunk by chunk: memory bounded by the chunk, not the cohort.

Each chunk (carscore.chunking: whole small files, or a large file cut where
patient_id changes) is read and graded on its own, by the same intake and
engine as a whole cohort, and reduced to its courses' summaries, problems and
notes (and, when asked, handed on with its days before they are dropped).
Cohort statistics are computed once, at the end, from the summaries.

The result is what one read of every file would give. A patient whose rows
reach two chunks (a file not grouped by patient, or a patient's courses in
two files read in different chunks) would be split, so the chunks that share
a patient are read again together, as one; their earlier results are
replaced. A file not grouped by patient is then read whole, with a note.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from carscore import sources as source_files
from carscore.assess import Assessment, assess_intake, summarise_intake
from carscore.chunking import Chunk, Piece, chunks, partitioned
from carscore.compile import COURSE
from carscore.csvread import FILE, LINE, FileNotes
from carscore.engine import Engine
from carscore.errors import InputProblem
from carscore.intake import Intake, _empty_courses, _empty_rows, _not_assessed, read_sources
from carscore.sources import Source, file_bytes

# About 16 MB of CSV a chunk: measured as the size where the engine's own work
# per chunk outweighs the cost of starting it, with memory well under 1 GB.
CHUNK_BYTES = 16 << 20


@dataclass
class _Part:
    """The results of one chunk (or of chunks read again together)."""

    first_chunk: int
    last_chunk: int
    summaries: pl.DataFrame
    courses: pl.DataFrame
    problems: list[InputProblem]
    note_pairs: list[tuple[str, str]]
    file_columns: dict[int, frozenset[str]]
    patients: pl.DataFrame  # patient_id and _file_index (input order) of each course in this part
    output: pl.DataFrame | None = None  # what on_days made of its days


@dataclass
class ChunkedRun:
    engine: Engine
    reasons: bool
    column_map: dict[str, str] | None
    ignore_unknown: bool
    on_days: Callable[[Assessment], Any] | None
    parts: list[_Part] = field(default_factory=list)
    # per chunk read: the files it held (by input order), and whether they were streamed in pieces
    held: list[tuple[list[int], bool]] = field(default_factory=list)
    days: pl.DataFrame | None = None  # what on_days made of every chunk's days, courses numbered in input order

    def intake_of(self, chunk: Chunk) -> Intake:
        """One chunk's rows read and checked, numbered as in its files."""
        sources = [p.source for p in chunk.pieces]
        intake = read_sources(sources, self.engine.contract, column_map=self.column_map, ignore_unknown=self.ignore_unknown)
        _to_file_lines(intake, chunk.pieces)
        return intake

    def read(self, chunk: Chunk, first: int, last: int) -> _Part:
        """One chunk read, graded and reduced."""
        intake = self.intake_of(chunk)
        if self.on_days is None:
            graded = summarise_intake(intake, self.engine)
        else:
            graded = assess_intake(intake, self.engine, reasons=self.reasons)
        output = self.on_days(graded) if self.on_days is not None else None
        orders = [p.file_order for p in chunk.pieces]
        courses = intake.courses.with_columns(pl.col("_file_index").replace_strict(list(range(len(orders))), orders))
        return _Part(
            first,
            last,
            graded.summaries,
            courses,
            chunk.problems + intake.problems[: len(intake.problems) - len(intake.left_out)],
            intake.note_pairs,
            {orders[i]: cols for i, cols in enumerate(intake.file_columns)},
            courses.select("patient_id", "_file_index").unique(),
            output,
        )


def assess_in_chunks(
    paths: list[str],
    engine: Engine,
    stdin: bytes | None = None,
    *,
    chunk_bytes: int | None = None,
    reasons: bool = False,
    column_map: dict[str, str] | None = None,
    ignore_unknown: bool = False,
    on_days: Callable[[Assessment], pl.DataFrame] | None = None,
    on_output: Callable[[pl.DataFrame], None] | None = None,
    on_chunk: Callable[[int], None] | None = None,
    workers: int = 2,
) -> tuple[Assessment, pl.DataFrame | None]:
    """The cohort's summaries as one Assessment (its ``days`` empty), and what
    ``on_days`` made of each chunk's graded days (a table with a ``_course``
    column: one table, courses numbered as in the Assessment, in their order).

    ``on_output`` is handed what ``on_days`` made of each chunk as soon as it
    is graded, in input order, so that it can be written while the rest is
    graded. When those tables, one after the other, are the cohort's days in
    order, no table is returned (None): nothing is gathered. When chunks had to
    be read again (a patient in two of them), the table returned replaces them.

    ``on_chunk`` is told the number of courses done after each chunk;
    ``workers`` chunks are graded side by side."""
    notes: list[str] = []
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    sources, source_problems = source_files.sources_from_paths(paths, stdin, notes=notes, lazy=True)
    run = ChunkedRun(engine, reasons, column_map, ignore_unknown, on_days)
    done = 0
    pending = chunks(sources, engine.contract, chunk_bytes, column_map, ignore_unknown)
    for chunk, part in _graded(run, pending, workers):
        run.held.append((sorted({p.file_order for p in chunk.pieces}), not all(p.whole for p in chunk.pieces)))
        run.parts.append(part)
        if on_output is not None and part.output is not None:
            on_output(part.output)
        done += part.courses.height
        if on_chunk is not None:
            on_chunk(done)
    handed_on = list(run.parts) if on_output is not None else None
    _deal_ungrouped_files(run, sources, chunk_bytes, notes, workers)
    _read_shared_patients_together(run, sources, notes)
    unchanged = handed_on is not None and len(handed_on) == len(run.parts) and all(map(operator.is_, handed_on, run.parts))
    return _merged(run, engine, sources, source_problems, notes, days_handed_on=unchanged), run.days


def _deal_ungrouped_files(run: ChunkedRun, sources: list[Source], chunk_bytes: int, notes: list[str], workers: int) -> None:
    """A streamed file with a patient in two of its pieces is not grouped by
    patient: its pieces' results go, and it is read again dealt by patient."""
    pieces_of: dict[int, list[int]] = {}
    for k, part in enumerate(run.parts):
        files, in_pieces = run.held[part.first_chunk]
        if in_pieces and len(files) == 1:
            pieces_of.setdefault(files[0], []).append(k)
    ungrouped = [order for order, indices in pieces_of.items() if _shares_a_patient([run.parts[k] for k in indices])]
    dropped = {k for order in ungrouped for k in pieces_of[order]}
    run.parts = [part for k, part in enumerate(run.parts) if k not in dropped]
    for order in ungrouped:
        notes.append(
            f"{sources[order].name}: not grouped by patient_id (a patient's rows are apart): "
            "its rows were dealt by patient into temporary files and read from there"
        )
        dealt = partitioned(sources[order], order, run.engine.contract, chunk_bytes, run.column_map, run.ignore_unknown)
        for _chunk, part in _graded(run, dealt, workers, first=len(run.held)):
            run.held.append(([order], True))
            run.parts.append(part)


def _shares_a_patient(parts: list[_Part]) -> bool:
    return _first_shared_patient(parts) is not None


def _first_shared_patient(parts: list[_Part]) -> tuple[int, int, set[int]] | None:
    """The first two parts (by index) that hold one patient, and that patient's
    files in both: a file among them is not grouped by patient; None if no
    patient is in two parts."""
    if len(parts) < 2:
        return None
    every = pl.concat([p.patients.with_columns(_part=pl.lit(k, pl.UInt32)) for k, p in enumerate(parts)])
    spread = (
        every.group_by("patient_id")
        .agg(pl.col("_part").unique().sort().alias("_parts"))
        .filter(pl.col("_parts").list.len() > 1)
        .with_columns(first=pl.col("_parts").list.get(0), second=pl.col("_parts").list.get(1))
        .sort("second", "first", "patient_id")
    )
    if spread.is_empty():
        return None
    patient, first, second = spread.row(0, named=True)["patient_id"], spread["first"][0], spread["second"][0]
    files = every.filter(pl.col("patient_id") == patient)
    in_first = set(files.filter(pl.col("_part") == first)["_file_index"].to_list())
    in_second = set(files.filter(pl.col("_part") == second)["_file_index"].to_list())
    return first, second, in_first & in_second


def _graded(run: ChunkedRun, pending: Iterator[Chunk], workers: int, first: int = 0) -> Iterator[tuple[Chunk, _Part]]:
    """Each chunk read and graded, ``workers`` chunks at a time, given back in
    input order: polars leaves much of a core idle while it grades one chunk
    (window functions, wording reasons), so two chunks side by side use both."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="carscore-chunk") as pool:
        queue: deque[tuple[Chunk, Future[_Part]]] = deque()
        for i, chunk in enumerate(pending, start=first):
            queue.append((chunk, pool.submit(run.read, chunk, i, i)))
            if len(queue) > workers:
                done, future = queue.popleft()
                yield done, future.result()
        while queue:
            done, future = queue.popleft()
            yield done, future.result()


def _read_shared_patients_together(run: ChunkedRun, sources: list[Source], notes: list[str]) -> None:
    """Chunks that share a patient are read again as one: the whole stretch of
    chunks from the first to the last that holds the patient."""
    while (clash := _first_shared_patient(run.parts)) is not None:
        # ungrouped: files a patient reaches from two pieces (not grouped by patient)
        first, last, ungrouped = clash
        merged_from, merged_to = run.parts[first].first_chunk, run.parts[last].last_chunk
        held = run.held[merged_from : merged_to + 1]
        orders = sorted({o for files, _ in held for o in files})
        pieces: list[Piece] = []
        problems: list[InputProblem] = []
        for order in orders:
            src = sources[order]
            if src.path is None:
                pieces.append(Piece(Source(src.name, src.data), order))
                continue
            data, problem = file_bytes(src.path, src.name)
            if problem is not None:
                problems.append(problem)
            else:
                pieces.append(Piece(Source(src.name, data), order))
        streamed = ungrouped & {o for files, in_pieces in held if in_pieces for o in files}
        for order in sorted(streamed):
            notes.append(
                f"{sources[order].name}: not grouped by patient_id (a patient's rows are apart), so it was read whole; "
                "sort it by patient_id to read it in bounded memory"
            )
        part = run.read(Chunk(pieces, problems), merged_from, merged_to)
        run.parts[first : last + 1] = [part]


def _to_file_lines(intake: Intake, pieces: list[Piece]) -> None:
    """Rows and messages of a piece of a streamed file carry the file's own line numbers."""
    for i, piece in enumerate(pieces):
        if piece.line_map is not None:
            _mapped_lines(intake, i, piece)
    offsets = {i: (p.line_offset, p.header_lines) for i, p in enumerate(pieces) if p.line_offset}
    if not offsets:
        return
    for i, (offset, header) in offsets.items():
        shift = pl.when((pl.col(FILE) == i) & (pl.col(LINE) > header)).then(pl.col(LINE) + offset).otherwise(pl.col(LINE))
        intake.rows = intake.rows.with_columns(shift.cast(pl.UInt32).alias(LINE))
        first = pl.col("_first_line")
        intake.courses = intake.courses.with_columns(
            pl.when((pl.col("_file_index") == i) & (first > header)).then(first + offset).otherwise(first).cast(pl.UInt32)
        )
    names = {p.source.name: offsets[i] for i, p in enumerate(pieces) if i in offsets}

    def moved(problem: InputProblem) -> InputProblem:
        if problem.file in names and problem.row > names[problem.file][1]:
            return replace(problem, row=problem.row + names[problem.file][0])
        return problem

    intake.problems = [moved(p) for p in intake.problems]
    intake.left_out = [moved(p) for p in intake.left_out]


def _mapped_lines(intake: Intake, index: int, piece: Piece) -> None:
    """A piece of a partitioned file: each of its lines after the header is the file's line in ``line_map``."""
    import numpy as np

    line_map, header = np.asarray(piece.line_map), piece.header_lines

    def mapped(lines: pl.Series, files: pl.Series) -> pl.Series:
        values = lines.to_numpy().astype(np.int64)
        hit = (files.to_numpy() == index) & (values > header)
        values[hit] = line_map[values[hit] - header - 1]
        return pl.Series(lines.name, values, dtype=pl.UInt32)

    intake.rows = intake.rows.with_columns(mapped(intake.rows[LINE], intake.rows[FILE]))
    intake.courses = intake.courses.with_columns(mapped(intake.courses["_first_line"], intake.courses["_file_index"]))

    def moved(problem: InputProblem) -> InputProblem:
        if problem.file == piece.source.name and header < problem.row <= header + len(line_map):
            return replace(problem, row=int(line_map[problem.row - header - 1]))
        return problem

    intake.problems = [moved(p) for p in intake.problems]
    intake.left_out = [moved(p) for p in intake.left_out]


def _merged(
    run: ChunkedRun,
    engine: Engine,
    sources: list[Source],
    source_problems: list[InputProblem],
    notes: list[str],
    days_handed_on: bool = False,
) -> Assessment:
    """Every part's results as one Assessment, courses numbered in input order;
    ``days_handed_on``: the parts' days were handed on in this order, and are
    gathered only if the courses were not in input order."""
    summaries, courses, outputs = [], [], []
    base = 0
    for part in run.parts:
        n = part.courses.height
        courses.append(part.courses.with_columns((pl.col(COURSE) + base).cast(pl.UInt32)))
        summaries.append(part.summaries.with_columns((pl.col(COURSE) + base).cast(pl.UInt32)))
        if isinstance(part.output, pl.DataFrame):
            outputs.append(part.output.with_columns((pl.col(COURSE) + base).cast(pl.UInt32)))
        base += n
    all_courses = pl.concat(courses, how="vertical_relaxed") if courses else _empty_courses()
    all_summaries = pl.concat(summaries, how="vertical_relaxed") if summaries else None
    # input order: by file, then by each course's first row (as one read numbers them)
    order = all_courses.sort(["_file_index", "_first_line"], maintain_order=True).with_row_index("_new")
    renumber = order.select(pl.col(COURSE).alias("_old"), pl.col("_new").cast(pl.UInt32))
    all_courses = (
        all_courses.join(renumber, left_on=COURSE, right_on="_old").drop(COURSE).rename({"_new": COURSE}).sort(COURSE)
    ).select(_empty_courses().columns)
    if all_summaries is None:
        all_summaries = pl.DataFrame(schema={COURSE: pl.UInt32})
    else:
        all_summaries = all_summaries.join(renumber, left_on=COURSE, right_on="_old").drop(COURSE).rename({"_new": COURSE})
        all_summaries = all_summaries.sort(COURSE).select(COURSE, pl.exclude(COURSE))
    # the days handed on as each chunk was graded are the result when the
    # courses came in input order (they nearly always do: files are read in order)
    in_order = days_handed_on and renumber.select((pl.col("_old") == pl.col("_new")).all()).item()
    if outputs and not in_order:
        days = pl.concat(outputs, how="vertical_relaxed").join(renumber, left_on=COURSE, right_on="_old", maintain_order="left")
        run.days = days.drop(COURSE).rename({"_new": COURSE}).sort(COURSE, maintain_order=True)

    file_order = {s.name: i for i, s in enumerate(sources)}
    problems = _unique([p for part in run.parts for p in part.problems])
    problems.sort(key=lambda p: (file_order.get(p.file, -1), p.row))
    left_out = _not_assessed(all_courses)
    file_notes = FileNotes()
    column_notes = [
        [m for name, m in part.note_pairs if name == "--column"] for part in run.parts if part.note_pairs or part.courses.height
    ]
    for part in run.parts:
        for name, message in part.note_pairs:
            # "no file has a column" holds for the cohort only if it held for every chunk
            if name == "--column" and not all(message in c for c in column_notes):
                continue
            file_notes.add(name, message)
    file_columns = [frozenset[str]() for _ in sources]
    for part in run.parts:
        for order_i, cols in part.file_columns.items():
            file_columns[order_i] = cols
    intake = Intake(
        _empty_rows(engine.contract),
        all_courses,
        source_problems + problems + left_out,
        notes + file_notes.render(),
        len(sources),
        file_columns,
        left_out,
        file_notes.pairs(),
    )
    return Assessment(engine, intake, pl.DataFrame(schema={COURSE: pl.UInt32}), all_summaries)


def _unique(problems: list[InputProblem]) -> list[InputProblem]:
    """A streamed file's header is read with every piece: its problems are named once."""
    seen: set[tuple[str, int, str, str, str]] = set()
    out = []
    for p in problems:
        key = (p.file, p.row, p.column, p.value, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
