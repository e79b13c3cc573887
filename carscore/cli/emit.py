"""Writing a grading command's result: JSON (indented for a person at a
terminal, compact and encoded by polars otherwise), CSV, Parquet, or the
table; then every problem named on stderr, and the exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from carscore.cli.common import report_problems, usage
from carscore.cli.inputs import Format
from carscore.cli.output import OutputError, indented, json_bytes, stdout_errors, write, write_all, write_file

AllOption = Annotated[bool, typer.Option("--all", help="With the table format: show every course, however many.")]
# the table format shows a screenful of courses: each course of grade is a table of its days
GRADE_TABLE_COURSES = 10


def cohort_table_courses() -> int:
    """A screenful of the cohort's course table (one line a course)."""
    import shutil

    return max(20, shutil.get_terminal_size((100, 50)).lines - 5)


def emit(
    assessment: Any,
    fmt: Format,
    output: Path | None,
    include_days: bool,
    cohort: dict | None,
    table_renderer: Callable[[Any, Any], None],
    day_output: Any = None,
    streamed: StreamedOutput | None = None,
) -> None:
    """Write the result; then name every problem on stderr and exit 0 or 1. The
    problems are named even when the result cannot be written (exit 2 then).
    ``day_output``: the days already gathered from the chunks (chunked.assess_in_chunks);
    ``streamed``: the result begun while the chunks were graded, to be ended
    (when ``day_output`` is None: its days were all handed on in order) or
    abandoned."""
    from carscore import report

    def table() -> Any:
        if not include_days:
            return report.summary_table(assessment)
        if day_output is not None:
            from carscore.compile import COURSE

            return day_output.drop(COURSE)
        return report.day_table(assessment)

    try:
        if parquet_output(output):
            # Parquet holds the table a CSV would hold, typed (contract: .parquet by extension)
            if fmt is Format.json:
                raise usage("a .parquet output holds the CSV table: use --format csv (or leave --format out)")
            import io

            buffer = io.BytesIO()
            table().write_parquet(buffer)
            write(buffer.getvalue(), output)
        elif streamed is not None and day_output is None:
            streamed.finish(assessment, cohort)
        elif fmt is Format.json:
            if streamed is not None:
                streamed.abandon()
            if indented(output):
                doc = report.build_document(assessment, include_days=include_days, cohort=cohort)
                write(json_bytes(doc, 1 if include_days else 2), output)
            else:
                from carscore.jsontext import document_parts

                write(document_parts(assessment, include_days, cohort, day_output), output)
        elif fmt is Format.csv:
            if streamed is not None:
                streamed.abandon()
            write(report.csv_text(table()).encode("utf-8"), output)
        elif output is None or str(output) == "-":
            from carscore.cli.console import stdout_console

            with stdout_errors():
                table_renderer(assessment, stdout_console())
        else:
            from carscore.cli.console import text_console

            console, buffer = text_console()
            table_renderer(assessment, console)
            write_file(output, buffer.getvalue().encode("utf-8"))
    except OutputError:
        report_problems(assessment)
        raise
    raise typer.Exit(report_problems(assessment))


class StreamedOutput:
    """The compact JSON document, or the CSV table, of ``cohort --days``
    written to its file while the cohort is graded: its head first, then each
    chunk's courses as the chunk is graded (on a thread of its own, in input
    order), and its end once the cohort is done; then renamed over the output.
    Writing 350 MB after grading a million days took a sixth of the run. When
    the chunks had to be read again (a patient in two of them), what was
    written is dropped and the result is written whole, as for standard output."""

    def __init__(self, replacement: Any, head: bytes, write_part: Callable[..., None], end: Callable[[Any, Any], bytes]):
        from concurrent.futures import ThreadPoolExecutor

        self.replacement, self.write_part, self.end = replacement, write_part, end
        self.fh = replacement.open()
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="carscore-write")
        self.writes = [self.writer.submit(write_all, self.fh, head)]
        self.begun = False  # a course written: the next one after a comma (JSON)
        self.done = False

    @classmethod
    def begin(cls, output: Path | None, engine: Any, fmt: Format) -> StreamedOutput | None:
        """The result begun in ``output``; None for standard output or a
        device (what is written there cannot be taken back)."""
        from carscore.cli.output import Replacement

        if output is None or str(output) == "-":
            return None
        from carscore.jsontext import document_end, document_head, write_entries
        from carscore.report import day_table_head, write_day_rows

        try:
            replacement = Replacement.of(output)
            if replacement is None:
                return None
            if fmt is Format.json:
                return cls(replacement, document_head(engine), write_entries, document_end)
            return cls(replacement, day_table_head(engine), lambda fh, rows, _after: write_day_rows(fh, rows), lambda a, c: b"")
        except OutputError:
            return None  # said after grading, with the data's problems, as for any output

    def add(self, part: Any) -> None:
        """A chunk's courses (what on_days made of them), after those before."""
        if part.height:
            self.writes.append(self.writer.submit(self.write_part, self.fh, part, self.begun))
            self.begun = True

    def finish(self, assessment: Any, cohort: Any) -> None:
        """The result ended, on disk, and renamed over the output."""
        try:
            for written in self.writes:
                written.result()
            write_all(self.fh, self.end(assessment, cohort))
        except OSError as exc:
            self.done = True
            self.writer.shutdown(wait=True, cancel_futures=True)
            raise self.replacement.failed(exc) from None
        except BaseException:
            self.abandon()
            raise
        self.done = True
        self.writer.shutdown(wait=True)
        self.replacement.commit()

    def abandon(self) -> None:
        """What was written removed (the output as it was); nothing once finished."""
        if self.done:
            return
        self.done = True
        self.writer.shutdown(wait=True, cancel_futures=True)
        self.replacement.discard()


def parquet_output(output: Path | None) -> bool:
    return output is not None and output.suffix.lower() == ".parquet"
