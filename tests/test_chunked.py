"""Chunked assessment (carscore.chunked) gives what one read of every file
gives: the same summaries, cohort statistics, day rows and problems with the
same row numbers, whatever the chunk size."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import polars as pl
import pytest
from conftest import ROOT, write_rows

from carscore import report
from carscore.assess import assess_paths, load_engine
from carscore.chunked import assess_in_chunks
from carscore.chunking import chunks
from carscore.cohort import cohort_of
from carscore.jsontext import course_entries, document_bytes, document_parts
from carscore.sources import sources_from_paths

SAMPLE = ROOT / "sample_cases" / "tp53_ball_two_infusions.csv"
ENGINE = load_engine()


def cohort_file(path: Path, patients: int, seed: int = 7, damaged: tuple[int, ...] = ()) -> Path:
    """The sample patient's two courses, copied under new ids with their signs
    shifted at random; rows in ``damaged`` (0-based data rows) get an unreadable temperature."""
    rng = random.Random(seed)
    with SAMPLE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for p in range(patients):
        shift = rng.uniform(-0.8, 1.2)
        for r in rows:
            copy = dict(r, patient_id=f"C{p:03d}")
            if copy["temp_c"]:
                copy["temp_c"] = f"{float(copy['temp_c']) + shift:.1f}"
            if copy.get("ice_score") and rng.random() < 0.3:
                copy["ice_score"] = str(max(0, int(copy["ice_score"]) - rng.randint(0, 4)))
            out.append(copy)
    for i in damaged:
        out[i]["temp_c"] = "warm"
    return write_rows(path, out)


def documents(paths: list[str], chunk_bytes: int) -> tuple[dict, dict]:
    whole = assess_paths(paths, ENGINE)
    chunked, _ = assess_in_chunks(paths, ENGINE, chunk_bytes=chunk_bytes)
    first = report.build_document(whole, include_days=False, cohort=cohort_of(whole))
    second = report.build_document(chunked, include_days=False, cohort=cohort_of(chunked))
    return first, second


@pytest.mark.parametrize("chunk_bytes", [1_500, 9_000, 1 << 20])
def test_a_cohort_in_tiny_chunks_gives_the_summaries_statistics_and_problems_of_one_read(
    tmp_path: Path, chunk_bytes: int
) -> None:
    data = cohort_file(tmp_path / "cohort.csv", 24, damaged=(5, 400, 1500))
    whole, chunked = documents([str(data)], chunk_bytes)
    assert chunked["patients"] == whole["patients"]
    assert chunked["cohort"] == whole["cohort"]
    assert chunked["problems"] == whole["problems"]
    assert [p["row"] for p in whole["errors"][:3]] == [7, 402, 1502]  # the file's own rows, header = row 1
    pieces = list(chunks(sources_from_paths([str(data)], lazy=True)[0], ENGINE.contract, chunk_bytes))
    if chunk_bytes < 10_000:
        assert len(pieces) > 5  # really cut, and never inside a patient
        ids = [set(csv_ids(c.pieces[0].source.data)) for c in pieces]
        assert all(not (a & b) for i, a in enumerate(ids) for b in ids[i + 1 :])


def csv_ids(data: bytes) -> list[str]:
    return [r["patient_id"] for r in csv.DictReader(io.StringIO(data.decode()))]


def test_the_day_rows_of_the_chunks_are_the_day_rows_of_one_read(tmp_path: Path) -> None:
    data = cohort_file(tmp_path / "cohort.csv", 10)
    whole = assess_paths([str(data)], ENGINE)
    chunks_read = []

    def table(a):
        chunks_read.append(a.days.height)
        return report.day_table(a).with_columns(a.days["_course"])

    chunked, days = assess_in_chunks([str(data)], ENGINE, chunk_bytes=3_000, reasons=True, on_days=table)
    assert len(chunks_read) > 3
    assert days.drop("_course").equals(report.day_table(whole))
    # and as encoded JSON: the document of one read
    _, encoded = assess_in_chunks([str(data)], ENGINE, chunk_bytes=3_000, reasons=True, on_days=course_entries)
    assert json.loads(document_bytes(chunked, True, None, encoded)) == json.loads(
        json.dumps(report.build_document(whole), default=str)
    )


def test_a_file_not_grouped_by_patient_is_dealt_by_patient_with_a_note(tmp_path: Path) -> None:
    """Its rows are partitioned by a hash of patient_id on disk; every row keeps
    its own number, and the results are those of one read."""
    data = cohort_file(tmp_path / "cohort.csv", 8, damaged=(10, 230))
    lines = data.read_text(encoding="utf-8").splitlines()
    moved = lines[:1] + lines[1:200] + lines[260:] + lines[200:260]  # a run of one patient's rows moved to the end
    data.write_text("\n".join(moved) + "\n", encoding="utf-8")
    whole, chunked = documents([str(data)], 2_000)
    assert chunked["patients"] == whole["patients"] and chunked["cohort"] == whole["cohort"]
    assert chunked["errors"] == whole["errors"]
    # row 12 stayed; row 232 was in the moved run: it moved down by the rows after the run
    assert sorted(p["row"] for p in whole["errors"] if p["row"]) == [12, 232 + (len(lines) - 260)]
    notes = [p["message"] for p in chunked["problems"] if p["severity"] == "note"]
    assert any("not grouped by patient_id" in n and "dealt by patient" in n for n in notes), notes


def test_a_file_not_grouped_by_patient_with_quoted_cells_is_read_whole(tmp_path: Path) -> None:
    data = cohort_file(tmp_path / "cohort.csv", 6)
    lines = data.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace("no", '"no"', 1)
    moved = lines[:1] + lines[1:100] + lines[160:] + lines[100:160]
    data.write_text("\n".join(moved) + "\n", encoding="utf-8")
    whole, chunked = documents([str(data)], 2_000)
    assert chunked["patients"] == whole["patients"] and chunked["cohort"] == whole["cohort"]


def test_a_patient_in_two_files_read_in_different_chunks_is_read_as_one(tmp_path: Path) -> None:
    """The age written only with the first course is the second course's age
    too (contract §1), and a course in two files is named, as in one read."""
    first = write_rows(
        tmp_path / "a.csv",
        [{"patient_id": "K1", "infusion": 1, "day": d, "age_years": 8, "temp_c": 38.4} for d in range(0, 5)]
        + [{"patient_id": "K2", "infusion": 1, "day": d, "age_years": 30, "temp_c": 37.0} for d in range(0, 5)],
    )
    second = write_rows(
        tmp_path / "b.csv",
        [{"patient_id": "K1", "infusion": 2, "day": d, "temp_c": 38.6} for d in range(0, 5)]
        + [{"patient_id": "K2", "infusion": 1, "day": 9, "temp_c": 39.0}],
    )
    whole, chunked = documents([str(first), str(second)], 100)
    assert chunked["patients"] == whole["patients"]
    assert chunked["problems"] == whole["problems"]
    assert any("already in" in p["message"] for p in whole["problems"])


def test_a_folder_of_many_small_files_in_chunks(tmp_path: Path) -> None:
    folder = tmp_path / "cohort"
    folder.mkdir()
    for k in range(6):
        cohort_file(folder / f"p{k}.csv", 1, seed=k)
        text = (folder / f"p{k}.csv").read_text(encoding="utf-8").replace("C000", f"F{k}")
        (folder / f"p{k}.csv").write_text(text, encoding="utf-8")
    whole, chunked = documents([str(folder)], 5_000)
    assert chunked == whole


def test_the_compact_document_is_the_document(tmp_path: Path) -> None:
    data = cohort_file(tmp_path / "cohort.csv", 3)  # six courses
    assessed = assess_paths([str(data)], ENGINE)
    stats = cohort_of(assessed)
    for days in (True, False):
        expected = json.loads(json.dumps(report.build_document(assessed, include_days=days, cohort=stats), default=str))
        assert json.loads(document_bytes(assessed, days, stats)) == expected
        # written in parts of two courses: the same document
        assert json.loads(b"".join(document_parts(assessed, days, stats, rows_a_part=2))) == expected


def test_a_large_parquet_file_is_streamed_in_chunks_with_the_rows_of_its_csv(tmp_path: Path) -> None:
    data = cohort_file(tmp_path / "cohort.csv", 12, damaged=(300,))
    parquet = tmp_path / "cohort.parquet"
    pl.read_csv(data, infer_schema_length=None).write_parquet(parquet)
    whole, _ = documents([str(data)], 1 << 30)
    chunked, _ = assess_in_chunks([str(parquet)], ENGINE, chunk_bytes=4_000)
    doc = report.build_document(chunked, include_days=False, cohort=cohort_of(chunked))
    assert [p["summary"] for p in doc["patients"]] == [p["summary"] for p in whole["patients"]]
    assert doc["cohort"] == whole["cohort"]
    assert [(p["row"], p["column"]) for p in doc["errors"]][:1] == [(302, "temp_c")]


def test_two_files_not_grouped_by_patient_are_each_dealt_by_patient(tmp_path: Path) -> None:
    paths = []
    for k in range(2):
        data = cohort_file(tmp_path / f"c{k}.csv", 6, seed=k)
        lines = data.read_text(encoding="utf-8").splitlines()
        lines = [line.replace("C00", f"K{k}C00") for line in lines]
        moved = lines[:1] + lines[1:150] + lines[210:] + lines[150:210]
        data.write_text("\n".join(moved) + "\n", encoding="utf-8")
        paths.append(str(data))
    whole, chunked = documents(paths, 2_000)
    assert chunked["patients"] == whole["patients"] and chunked["cohort"] == whole["cohort"]
    notes = [p["message"] for p in chunked["problems"] if p["severity"] == "note"]
    assert sum("dealt by patient" in n for n in notes) == 2
