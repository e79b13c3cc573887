"""What registry-sized data needs from the command line: Parquet in and out,
compact JSON for machines, and tables that stop at a screenful of courses."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pytest
from conftest import ROOT, write_rows
from typer.testing import CliRunner

from carscore.cli.app import app

runner = CliRunner()
SAMPLE = ROOT / "sample_cases" / "tp53_ball_two_infusions.csv"


def cli(*args: str):
    return runner.invoke(app, list(args))


def as_parquet(csv_path: Path, parquet_path: Path) -> Path:
    pl.read_csv(csv_path, infer_schema_length=None).write_parquet(parquet_path)
    return parquet_path


def test_a_parquet_file_is_read_as_the_csv_it_holds(tmp_path: Path) -> None:
    parquet = as_parquet(SAMPLE, tmp_path / "sample.parquet")
    from_csv = json.loads(cli("cohort", str(SAMPLE), "-f", "json").stdout)
    from_parquet = json.loads(cli("cohort", str(parquet), "-f", "json").stdout)
    assert [p["summary"] for p in from_parquet["patients"]] == [p["summary"] for p in from_csv["patients"]]
    assert from_parquet["cohort"] == from_csv["cohort"]
    # and in a folder, and for grade
    folder = tmp_path / "folder"
    folder.mkdir()
    as_parquet(SAMPLE, folder / "p.parquet")
    assert json.loads(cli("cohort", str(folder), "-f", "json").stdout)["cohort"] == from_csv["cohort"]
    graded = json.loads(cli("grade", str(parquet), "-f", "json").stdout)
    assert graded["patients"][0]["days"] == json.loads(cli("grade", str(SAMPLE), "-f", "json").stdout)["patients"][0]["days"]


def test_a_bad_cell_in_a_parquet_file_is_named_with_its_row(tmp_path: Path) -> None:
    frame = pl.read_csv(SAMPLE, infer_schema_length=None).with_columns(pl.col("temp_c").cast(pl.String))
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("warm")).otherwise(pl.col("temp_c")).alias("temp_c")
    )
    frame.write_parquet(tmp_path / "bad.parquet")
    result = cli("cohort", str(tmp_path / "bad.parquet"), "-f", "json")
    assert result.exit_code == 1
    (error,) = [p for p in json.loads(result.stdout)["problems"] if p["severity"] == "error" and p["column"] == "temp_c"]
    assert (error["row"], error["value"]) == (5, "warm")  # the fourth record: row 5, the header counted as row 1


def test_a_damaged_parquet_file_is_a_sentence(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(b"PAR1" + b"\x00" * 64)
    result = cli("cohort", str(damaged), str(SAMPLE), "-f", "json")
    assert result.exit_code == 1
    assert "damaged.parquet: cannot be read as Parquet" in result.stderr
    assert len(json.loads(result.stdout)["patients"]) == 2  # the rest is still assessed


def test_results_written_as_parquet_are_the_csv_table_typed(tmp_path: Path) -> None:
    for command, extra in (("grade", []), ("cohort", []), ("cohort", ["--days"])):
        out = tmp_path / f"{command}{len(extra)}.parquet"
        assert cli(command, str(SAMPLE), *extra, "-o", str(out)).exit_code == 0
        written = pl.read_parquet(out)
        as_csv = pl.read_csv(io.StringIO(cli(command, str(SAMPLE), *extra, "-f", "csv").stdout), infer_schema_length=None)
        assert written.columns == as_csv.columns and written.height == as_csv.height
        assert written["patient_id"].to_list() == as_csv["patient_id"].to_list()
    assert written["day"].dtype.is_integer()
    refused = cli("cohort", str(SAMPLE), "-f", "json", "-o", str(tmp_path / "x.parquet"))
    assert refused.exit_code == 2 and "use --format csv" in refused.stderr


def test_json_for_a_file_or_pipe_is_compact_and_the_same_document(tmp_path: Path) -> None:
    result = cli("grade", str(SAMPLE), "-f", "json")
    assert result.stdout.count("\n") == 1  # one line: no indentation for a machine
    doc = json.loads(result.stdout)
    assert doc["patients"][0]["days"][0]["day"] == -7


def test_the_table_shows_a_screenful_of_courses_unless_all(tmp_path: Path) -> None:
    rows = [{"patient_id": f"P{k:02d}", "day": d, "temp_c": 38.5} for k in range(12) for d in (0, 1)]
    data = write_rows(tmp_path / "many.csv", rows)
    shown = cli("grade", str(data))
    assert shown.exit_code == 0
    assert "2 more courses not shown: add --all" in shown.stdout
    assert "P11" not in shown.stdout and "P09" in shown.stdout
    everything = cli("grade", str(data), "--all")
    assert "P11" in everything.stdout and "not shown" not in everything.stdout


def test_compact_json_escapes_characters_that_hide_or_reorder_text(tmp_path: Path) -> None:
    hidden = "P\u202e1\u2028x\u0085y"
    data = write_rows(tmp_path / "odd.csv", [{"patient_id": hidden, "day": d, "temp_c": 38.5, "o2_device": "none"} for d in (0, 1)])
    for command in (["grade"], ["cohort", "--days"], ["cohort"]):
        result = cli(*command, str(data), "-f", "json")
        assert result.exit_code == 0, result.stderr
        assert all(c not in result.stdout for c in "\u202e\u2028\u0085")
        assert "\\u202e" in result.stdout
        assert json.loads(result.stdout)["patients"][0]["patient_id"] == hidden


@pytest.mark.parametrize("hidden", ["lab\x7fsystem", "lab\u2028system", "lab\u200bsystem"])
def test_compact_json_escapes_hidden_characters_in_day_text(tmp_path: Path, hidden: str) -> None:
    """A day's free text (its source record) with DEL, the only unsafe
    character inside ASCII, or one beyond it: escaped in every day."""
    rows = [{"patient_id": "P1", "day": d, "temp_c": 38.5, "o2_device": "none", "source": hidden} for d in (0, 1)]
    data = write_rows(tmp_path / "odd.csv", rows)
    for command in (["grade"], ["cohort", "--days"]):
        result = cli(*command, str(data), "-f", "json")
        assert result.exit_code == 0, result.stderr
        assert hidden[3] not in result.stdout
        assert f"\\u{ord(hidden[3]):04x}" in result.stdout
        assert [d["source"] for d in json.loads(result.stdout)["patients"][0]["days"]] == [hidden, hidden]
