"""Header matching: exact after folding, near misses never read silently,
user mappings (column_map) and --ignore-unknown-columns (ignore_unknown),
and a °F temperature never read as temp_c."""

from __future__ import annotations

import polars as pl
import pytest

from carscore.contract import load_contract
from carscore.csvread import fold, parse_column_map, read_frames, suggestions
from carscore.errors import InputProblem, UsageError
from carscore.sources import Source

CONTRACT = load_contract()


def read(data: bytes, name: str = "f.csv", **options) -> tuple[pl.DataFrame | None, list[InputProblem], list[str]]:
    frames, problems, notes = read_frames([Source(name, data)], CONTRACT, **options)
    return (frames[0] if frames else None), problems, notes


def columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if not c.startswith("_")]


# --------------------------------------------------------------------------- exact after folding


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("Temp C", "temp_c"),
        ("  TEMP-C ", "temp_c"),
        ("Temp - C", "temp_c"),
        ("Patient ID", "patient_id"),
        ("PATIENT_ID", "patient_id"),
        ("O2 Flow LPM", "o2_flow_lpm"),
        ("bm-blasts-pct", "bm_blasts_pct"),
        ("temp__c", "temp_c"),
    ],
)
def test_folded_header_is_the_column(header: str, column: str) -> None:
    assert fold(header) == column
    frame, problems, notes = read(f"Day,{header}\n0,1\n".encode())
    assert problems == [] and notes == []
    assert column in columns(frame)


def test_folding_is_not_fuzzy_matching() -> None:
    assert fold("Infusion no") == "infusion_no"
    frame, problems, _ = read(b"patient_id,day,Infusion no\nA,0,1\n")
    assert frame is None and problems and "infusion" in problems[0].message


def test_a_column_twice_in_another_case_is_a_problem() -> None:
    frame, problems, _ = read(b"patient_id,day,Temp_C,temp c\nP1,0,37.0,39.5\n")
    assert frame is None
    assert [(p.row, p.column) for p in problems] == [(1, "temp_c")] and "twice" in problems[0].message


# --------------------------------------------------------------------------- near misses


NEAR = {
    "Temperature": "temp_c",
    "temp": "temp_c",
    "Temp (°C)": "temp_c",
    "Tocilizumb": "tocilizumab",
    "tocilizumab_mg": "tocilizumab",
    "vasopressor": "vasopressors",
    "MRN": "patient_id",
    "patient": "patient_id",
    "patientid": "patient_id",
    "infusion_no": "infusion",
    "Infusion Number": "infusion",
    "ICE": "ice_score",
    "CAPD": "capd_score",
    "ferritin_ng_ml": "ferritin",
    "IL-6": "il6",
    "platelts": "platelets",
    "Hgb": "hemoglobin",
    "age": "age_years",
}


@pytest.mark.parametrize("header", list(NEAR))
def test_near_miss_is_an_error_naming_the_header_and_its_likely_meaning(header: str) -> None:
    frame, problems, _ = read(f"patient_id,day,{header}\nA,0,1\n".encode())
    assert frame is None, "nothing may be graded on a misread file"
    meant = NEAR[header]
    near = [p for p in problems if p.column == header]
    assert len(near) == 1
    p = near[0]
    assert p.file == "f.csv" and p.row == 1
    assert f"did you mean {meant}" in p.message
    assert f"--column '{header}={meant}'" in p.message and "--ignore-unknown-columns" in p.message
    assert str(p).startswith(f"f.csv, row 1, column {header}: not a carscore column; did you mean {meant}")


@pytest.mark.parametrize("header", ["day_number", "Study Day"])
def test_near_miss_of_day_is_named_rather_than_no_day_column(header: str) -> None:
    frame, problems, _ = read(f"patient_id,{header},temp_c\nA,0,37\n".encode())
    assert frame is None
    assert [p.column for p in problems] == [header] and "did you mean day?" in problems[0].message


def test_suggestion_names_the_unit_of_the_column() -> None:
    _, problems, _ = read(b"patient_id,day,crp_mg_dl\nA,0,1\n")
    assert "did you mean crp (mg/L)?" in problems[0].message


@pytest.mark.parametrize("header", ["notes", "site", "sex", "ward", "bed", "infusion_date", "weight_kg", "comment"])
def test_far_headers_are_a_note_and_the_file_is_read(header: str) -> None:
    frame, problems, notes = read(f"patient_id,day,temp_c,{header}\nA,0,37\n".encode())
    assert problems == []
    assert columns(frame) == ["patient_id", "day", "temp_c"]
    assert notes == [f"f.csv: ignored columns that carscore does not use: {header}"]


def test_ignore_unknown_leaves_near_misses_out_with_a_note() -> None:
    frame, problems, notes = read(b"patient_id,day,Temperature,temp_c,notes\nA,0,99,37\n", ignore_unknown=True)
    assert problems == []
    assert columns(frame) == ["patient_id", "day", "temp_c"]
    assert frame["temp_c"].to_list() == [37.0]
    assert "f.csv: ignored columns that carscore does not use: notes" in notes
    assert any("--ignore-unknown-columns" in n and "Temperature (temp_c?)" in n for n in notes)


def test_no_day_column_is_one_problem() -> None:
    frame, problems, _ = read(b"patient_id,infusion,infusion_datetime\nA,1,2024-01-01\n")
    assert frame is None
    assert len(problems) == 1 and "no 'day' column" in problems[0].message and problems[0].row == 1


# --------------------------------------------------------------------------- °F


@pytest.mark.parametrize("header", ["temp_f", "Temp F", "temp (F)", "Temp °F", "temperature_f", "Temp Fahrenheit", "tempf"])
def test_fahrenheit_is_never_temp_c(header: str) -> None:
    assert "temp_c" not in suggestions(header, CONTRACT)
    frame, problems, _ = read(f"patient_id,day,{header}\nA,0,101.3\n".encode())
    assert frame is None
    assert len(problems) == 1 and problems[0].column == header
    assert "Fahrenheit" in problems[0].message and "temp_c=" not in problems[0].message


def test_fahrenheit_mapped_to_temp_c_is_refused() -> None:
    frame, problems, _ = read(b"patient_id,day,Temp F\nA,0,101.3\n", column_map={"Temp F": "temp_c"})
    assert frame is None
    assert len(problems) == 1 and problems[0].column == "Temp F" and "Fahrenheit" in problems[0].message


def test_fahrenheit_left_out_when_asked() -> None:
    frame, problems, notes = read(b"patient_id,day,temp_c,temp_f\nA,0,38.5,101.3\n", ignore_unknown=True)
    assert problems == []
    assert frame["temp_c"].to_list() == [38.5] and columns(frame) == ["patient_id", "day", "temp_c"]
    assert any("temp_f (°F)" in n for n in notes)


# --------------------------------------------------------------------------- column_map


@pytest.mark.parametrize("key", ["Temperature (max)", "temperature_(max)", "TEMPERATURE (MAX)"])
def test_mapped_header_is_read_as_written_or_folded(key: str) -> None:
    frame, problems, notes = read(b"patient_id,day,Temperature (max)\nA,0,38.5\n", column_map={key: "Temp_C"})
    assert problems == [] and notes == []
    assert frame["temp_c"].to_list() == [38.5]


def test_mapping_onto_a_column_the_file_also_has_is_a_problem() -> None:
    frame, problems, _ = read(b"patient_id,day,Temperature,temp_c\nA,0,38.5,37.0\n", column_map={"Temperature": "temp_c"})
    assert frame is None
    assert len(problems) == 1
    assert "Temperature" in problems[0].message and "temp_c" in problems[0].message and problems[0].row == 1


def test_two_headers_mapped_onto_one_column_is_a_problem() -> None:
    frame, problems, _ = read(b"patient_id,day,T1,T2\nA,0,38.5,37.0\n", column_map={"T1": "temp_c", "T2": "temp_c"})
    assert frame is None and len(problems) == 1 and "T1" in problems[0].message and "T2" in problems[0].message


def test_mapping_to_nothing_leaves_the_column_out_with_a_note() -> None:
    frame, problems, notes = read(b"patient_id,day,temp_c,Temp F\nA,0,38.5,101.3\n", column_map={"Temp F": ""})
    assert problems == []
    assert columns(frame) == ["patient_id", "day", "temp_c"]
    assert any("Temp F" in n and "as asked" in n for n in notes)


def test_mapping_to_an_unknown_column_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a carscore column.*temp_c"):
        read(b"patient_id,day,T\nA,0,38.5\n", column_map={"T": "temp_cc"})


def test_a_mapping_no_file_uses_is_noted() -> None:
    frame, problems, notes = read(b"patient_id,day,temp_c\nA,0,38.5\n", column_map={"Temperature": "temp_c"})
    assert problems == [] and frame is not None
    assert notes == ["--column: no file has a column 'Temperature'"]


def test_parse_column_map() -> None:
    assert parse_column_map(["Temp C=temp_c", " a=b = sbp "], CONTRACT) == {"Temp C": "temp_c", "a=b": "sbp"}
    with pytest.raises(UsageError, match="HEADER=column"):
        parse_column_map(["Temp C"], CONTRACT)
    with pytest.raises(UsageError):
        parse_column_map(["x=not_a_column"], CONTRACT)


# --------------------------------------------------------------------------- many files, one header


def test_every_file_with_a_near_miss_header_is_named_up_to_a_limit() -> None:
    sources = [Source(f"p{i}.csv", b"day,Temperature\n0,38.5\n") for i in range(25)]
    frames, problems, _ = read_frames(sources, CONTRACT)
    assert frames == []
    assert [p.file for p in problems[:20]] == [f"p{i}.csv" for i in range(20)]
    assert len(problems) == 21 and "5 more files" in problems[-1].message


def test_notes_of_many_files_are_one_line() -> None:
    sources = [Source(f"p{i}.csv", b"day\ttemp_c\tnotes\n0\t38.5\tx\n") for i in range(6)]
    frames, problems, notes = read_frames(sources, CONTRACT)
    assert problems == [] and sum(f.height for f in frames) == 6
    assert notes == [
        "p0.csv, p1.csv and 4 other files: cells separated by tabs",
        "p0.csv, p1.csv and 4 other files: ignored columns that carscore does not use: notes",
    ]
