"""`cohort --days --format json|csv -o FILE` writes the result while the
cohort is graded, chunk by chunk: the file is byte for byte what standard
output gets (written after grading), also when chunks had to be read again,
and a run that stops leaves the previous file and nothing else."""

from __future__ import annotations

import csv
import errno
import json
from pathlib import Path

import pytest
from conftest import write_rows
from test_chunked import cohort_file
from typer.testing import CliRunner

import carscore.chunked
from carscore.cli.app import app
from carscore.cli.guard import EXIT_INTERRUPTED, EXIT_USAGE

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # a few courses a chunk: the document is written in many pieces
    monkeypatch.setattr(carscore.chunked, "CHUNK_BYTES", 4_000)


def written_and_shown(data: list[Path], out: Path, fmt: str = "json") -> tuple[bytes, bytes]:
    paths = [str(p) for p in data]
    to_file = cli("cohort", *paths, "--days", "-f", fmt, "-o", str(out))
    shown = cli("cohort", *paths, "--days", "-f", fmt)
    assert to_file.exit_code == shown.exit_code, to_file.stderr
    return out.read_bytes(), shown.stdout_bytes


def test_the_file_is_what_standard_output_gets(tmp_path: Path, small_chunks: None) -> None:
    data = cohort_file(tmp_path / "cohort.csv", 8, damaged=(40,))
    written, shown = written_and_shown([data], tmp_path / "days.json")
    assert written == shown
    document = json.loads(written)
    assert len(document["patients"]) == 15  # the course with an unreadable row is not assessed, and named
    assert all(p["days"] for p in document["patients"])
    assert document["problems"] and document["cohort"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.csv", "days.json"]


def test_chunks_read_again_replace_what_was_written(tmp_path: Path, small_chunks: None) -> None:
    """A patient in two files read in different chunks: those chunks are read
    again together and the document is written whole; still the same bytes."""
    data = cohort_file(tmp_path / "cohort.csv", 5)
    with data.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    first = write_rows(tmp_path / "a.csv", [r for r in rows if r["patient_id"] <= "C002" or r["infusion"] == "1"])
    second = write_rows(tmp_path / "b.csv", [r for r in rows if r["patient_id"] > "C002" and r["infusion"] != "1"])
    written, shown = written_and_shown([first, second], tmp_path / "days.json")
    assert written == shown
    ids = [(p["patient_id"], p["infusion"]) for p in json.loads(written)["patients"]]
    assert len(ids) == len(set(ids)) == 10


def test_a_file_not_grouped_by_patient_gives_the_same_document(tmp_path: Path, small_chunks: None) -> None:
    data = cohort_file(tmp_path / "cohort.csv", 5)
    with data.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    shuffled = write_rows(tmp_path / "shuffled.csv", rows[1::2] + rows[::2])
    written, shown = written_and_shown([shuffled], tmp_path / "days.json")
    assert written == shown
    assert len(json.loads(written)["patients"]) == 10


def test_an_interrupted_run_keeps_the_previous_file(tmp_path: Path, small_chunks: None, monkeypatch) -> None:
    data = cohort_file(tmp_path / "cohort.csv", 6)
    out = tmp_path / "days.json"
    out.write_text("{}\n")
    graded = []

    def stop_after_two(done: int) -> None:
        graded.append(done)
        if len(graded) == 2:
            raise KeyboardInterrupt

    real = carscore.chunked.assess_in_chunks
    monkeypatch.setattr(carscore.chunked, "assess_in_chunks", lambda *a, **k: real(*a, **k, on_chunk=stop_after_two))
    result = cli("cohort", str(data), "--days", "-f", "json", "-o", str(out))
    assert result.exit_code == EXIT_INTERRUPTED
    assert len(graded) == 2
    assert out.read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.csv", "days.json"]


def test_a_failed_write_is_one_sentence_and_keeps_the_previous_file(tmp_path: Path, small_chunks: None, monkeypatch) -> None:
    import carscore.jsontext

    data = cohort_file(tmp_path / "cohort.csv", 6, damaged=(3,))
    out = tmp_path / "days.json"
    out.write_text("{}\n")

    def full(*args, **kwargs) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(carscore.jsontext, "write_entries", full)
    result = cli("cohort", str(data), "--days", "-f", "json", "-o", str(out))
    assert result.exit_code == EXIT_USAGE
    assert "the disk is full (the previous file is unchanged)" in result.stderr
    assert "Traceback" not in result.stderr
    # the data's problems are still named
    assert "row 5, column temp_c" in result.stderr
    assert out.read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.csv", "days.json"]


def test_standard_output_and_devices_are_not_streamed(tmp_path: Path, small_chunks: None) -> None:
    data = cohort_file(tmp_path / "cohort.csv", 3)
    result = cli("cohort", str(data), "--days", "-f", "json", "-o", "/dev/null")
    assert result.exit_code == 0, result.stderr
    bad = cli("cohort", str(data), "--days", "-f", "json", "-o", str(tmp_path / "missing" / "days.json"))
    assert bad.exit_code == EXIT_USAGE
    assert "does not exist" in bad.stderr


def test_courses_out_of_input_order_within_a_chunk(tmp_path: Path) -> None:
    """A patient's second infusion in a second file, read in the same chunk as
    the first: the document lists courses by file and first row."""
    day = {"temp_c": 38.6, "o2_device": "none"}
    first = write_rows(
        tmp_path / "a.csv",
        [{"patient_id": "P", "infusion": 1, "day": d, **day} for d in (0, 1)]
        + [{"patient_id": "Q", "infusion": 1, "day": d, **day} for d in (0, 1)],
    )
    second = write_rows(tmp_path / "b.csv", [{"patient_id": "P", "infusion": 2, "day": d, **day} for d in (0, 1, 2)])
    written, shown = written_and_shown([first, second], tmp_path / "days.json")
    assert written == shown
    listed = [(p["patient_id"], p["infusion"], len(p["days"])) for p in json.loads(written)["patients"]]
    assert listed == [("P", 1, 2), ("Q", 1, 2), ("P", 2, 3)]


def test_one_course_in_two_files_read_in_two_chunks(tmp_path: Path, small_chunks: None) -> None:
    """The chunks holding its two halves are read again together: one course,
    written once."""
    data = cohort_file(tmp_path / "cohort.csv", 5)
    with data.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    halves = [r for r in rows if r["patient_id"] == "C002" and int(r["day"]) >= 10]
    first = write_rows(tmp_path / "a.csv", [r for r in rows if r not in halves])
    second = write_rows(tmp_path / "b.csv", halves)
    written, shown = written_and_shown([first, second], tmp_path / "days.json")
    assert written == shown
    ids = [(p["patient_id"], p["infusion"]) for p in json.loads(written)["patients"]]
    assert len(ids) == len(set(ids)) == 10


def test_the_csv_file_is_what_standard_output_gets(tmp_path: Path, small_chunks: None) -> None:
    data = cohort_file(tmp_path / "cohort.csv", 4, damaged=(7,))
    written, shown = written_and_shown([data], tmp_path / "days.csv", "csv")
    assert written == shown
    lines = written.decode("utf-8").splitlines()
    assert lines[0].startswith("patient_id,infusion,day,crs_grade")
    assert len(lines) > 100 and sum(line.startswith("patient_id") for line in lines) == 1
    # one course in two files: read again, written whole
    with data.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    halves = [r for r in rows if r["patient_id"] == "C001" and int(r["day"]) >= 10]
    first = write_rows(tmp_path / "a.csv", [r for r in rows if r not in halves])
    second = write_rows(tmp_path / "b.csv", halves)
    written, shown = written_and_shown([first, second], tmp_path / "split.csv", "csv")
    assert written == shown
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv", "cohort.csv", "days.csv", "split.csv"]


def test_a_parquet_output_is_written_whole(tmp_path: Path, small_chunks: None) -> None:
    import polars as pl

    data = cohort_file(tmp_path / "cohort.csv", 3)
    result = cli("cohort", str(data), "--days", "-o", str(tmp_path / "days.parquet"))
    assert result.exit_code == 0, result.stderr
    table = pl.read_parquet(tmp_path / "days.parquet")
    shown = cli("cohort", str(data), "--days", "-f", "csv")
    assert table.height == len(shown.stdout.splitlines()) - 1


def test_days_are_written_as_each_chunk_is_graded(tmp_path: Path, small_chunks: None, monkeypatch) -> None:
    from carscore.cli.emit import StreamedOutput

    handed: list[int] = []
    add = StreamedOutput.add

    def counted(self: StreamedOutput, part) -> None:
        handed.append(part.height)
        add(self, part)

    monkeypatch.setattr(StreamedOutput, "add", counted)
    data = cohort_file(tmp_path / "cohort.csv", 8)
    out = tmp_path / "out.json"
    result = cli("cohort", str(data), "--days", "-f", "json", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    patients = json.loads(out.read_bytes())["patients"]
    assert len(handed) > 2  # chunk by chunk, not once at the end
    assert sum(handed) == sum(len(p["days"]) for p in patients)  # a row a day
