"""Intake of rows as assessments: identity cells that cannot be read, doses,
clock times, per-file problem caps, and every course left out named."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from carscore.compile import COURSE
from carscore.contract import load_contract
from carscore.intake import MAX_PROBLEMS_PER_COLUMN, read_text
from carscore.sources import Source


def intake_of(text: str, name: str = "t.csv"):
    return read_text(text, name)


def messages(intake) -> list[str]:
    return [str(p) for p in intake.problems]


def assessed(intake) -> list[tuple[str, int]]:
    return [tuple(r) for r in intake.courses.filter(pl.col("assessed")).select("patient_id", "infusion").iter_rows()]


def test_unreadable_infusion_keeps_every_course_of_that_patient_out() -> None:
    intake = intake_of("patient_id,infusion,day,temp_c\nA,1,1,38.5\nA,38.5,2,39\nA,2,1,37\nB,1,1,38\n")
    assert assessed(intake) == [("B", 1)]
    text = "\n".join(messages(intake))
    assert "row 3, column infusion" in text and "'38.5'" in text
    # no phantom course 38 is made of the bad row
    assert 38 not in intake.courses["infusion"].to_list()
    assert "A (infusion 1)" in text and "A (infusion 2)" in text


def test_huge_infusion_number_is_out_of_range_not_infusion_1() -> None:
    intake = intake_of("patient_id,infusion,day,temp_c\nB,1,1,38\nB," + "1" * 30 + ",2,38\n")
    assert assessed(intake) == []
    assert any("column infusion" in m and "range" in m for m in messages(intake))


@pytest.mark.parametrize("dose", ["inf", "1e309", "-1", "nan"])
def test_non_finite_or_negative_doses_are_refused(dose: str) -> None:
    intake = intake_of(f"patient_id,day,tocilizumab\nA,1,{dose}\nB,1,8\n")
    assert assessed(intake) == [("B", 1)]
    assert any("column tocilizumab" in m for m in messages(intake))


def test_problems_are_capped_per_file_and_counted() -> None:
    n = MAX_PROBLEMS_PER_COLUMN + 5
    body = "".join(f"P{i},1,hot\n" for i in range(n))
    one = Source("one.csv", ("patient_id,day,temp_c\n" + body).encode())
    two = Source("two.csv", ("patient_id,day,temp_c\n" + body.replace("P", "Q")).encode())
    from carscore.intake import read_sources

    intake = read_sources([one, two])
    per_file = {f: [p for p in intake.problems if p.file == f and p.column == "temp_c"] for f in ("one.csv", "two.csv")}
    for problems in per_file.values():
        assert len(problems) == MAX_PROBLEMS_PER_COLUMN + 1
        assert "5 more rows" in problems[-1].message
    # every course left out is named, in each file
    left = [p.message for p in intake.problems if "not assessed" in p.message]
    assert len(left) == 2
    assert all(f"{n} courses not assessed" in m for m in left)
    assert f"P{n - 1} (infusion 1)" in left[0] and f"Q{n - 1} (infusion 1)" in left[1]


def test_clock_times_are_read_and_order_the_rows_of_a_day() -> None:
    intake = intake_of("patient_id,day,time,temp_c\nA,1,20:00,38.9\nA,1,08:00:30,37.0\nA,1,,37.5\nA,0,23:59,36.8\n")
    assert not intake.problems
    rows = intake.rows.sort(COURSE, maintain_order=True)
    assert rows["day"].to_list() == [0, 1, 1, 1]
    # untimed rows come first within their day ("some time that day"), then by clock
    assert rows["time"].to_list() == [23 * 3600 + 59 * 60, None, 8 * 3600 + 30, 20 * 3600]


@pytest.mark.parametrize("bad", ["25:00", "8h", "12:60", "noon"])
def test_bad_clock_time_is_named(bad: str) -> None:
    intake = intake_of(f"patient_id,day,time,temp_c\nA,1,{bad},38\n")
    assert assessed(intake) == []
    assert any("column time" in m and "clock time" in m for m in messages(intake))


def test_file_columns_record_what_each_file_has() -> None:
    from carscore.intake import read_sources

    intake = read_sources(
        [Source("a.csv", b"patient_id,day,temp_c\nA,1,38\n"), Source("b.csv", b"patient_id,day,o2_device\nB,1,none\n")]
    )
    assert "temp_c" in intake.file_columns[0] and "o2_device" not in intake.file_columns[0]
    assert "o2_device" in intake.file_columns[1] and "temp_c" not in intake.file_columns[1]


def test_day_level_checks_read_the_rows_of_a_day_together(tmp_path: Path) -> None:
    import carscore.contract

    contract_text = Path(carscore.contract.__file__).with_name("contract.yaml").read_text(encoding="utf-8")
    contract_text += (
        '  - when: "yes(csf_blasts) and not recorded(csf_wbc)"\n'
        "    level: day\n"
        "    columns: [csf_blasts, csf_wbc]\n"
        '    message: "blasts without a CSF count"\n'
    )
    path = tmp_path / "contract.yaml"
    path.write_text(contract_text, encoding="utf-8")
    contract = load_contract(str(path))
    # count and cytospin on two rows of one day: one examination, no problem
    split = read_text("patient_id,day,csf_wbc,csf_blasts\nA,1,12,\nA,1,,yes\n", "t.csv", contract)
    assert not split.problems
    # cytospin alone that day: the day check fires, the course is named and left out
    alone = read_text("patient_id,day,csf_wbc,csf_blasts\nA,1,,yes\nB,1,3,yes\n", "t.csv", contract)
    assert [tuple(r) for r in alone.courses.filter(pl.col("assessed")).select("patient_id", "infusion").iter_rows()] == [("B", 1)]
    assert any("blasts without a CSF count" in str(p) for p in alone.problems)


@pytest.mark.parametrize(
    "score, orientation, naming",
    [
        (5, 4, 3),  # the known items already exceed the total
        (9, 2, 1),  # even the blank items at their maxima fall short of it
    ],
)
def test_ice_items_that_cannot_make_the_total_are_an_input_error(score: int, orientation: int, naming: int) -> None:
    intake = intake_of(f"patient_id,day,ice_score,ice_orientation,ice_naming\nA,1,{score},{orientation},{naming}\nB,1,10,,\n")
    assert assessed(intake) == [("B", 1)]
    assert any("ICE items do not add up" in m for m in messages(intake))


def test_incomplete_ice_items_that_fit_the_total_are_not_an_error() -> None:
    intake = intake_of("patient_id,day,ice_score,ice_orientation,ice_naming\nA,1,8,4,3\n")
    assert not intake.problems and assessed(intake) == [("A", 1)]


def test_word_cells_are_read_alike_whether_a_column_holds_few_texts_or_many() -> None:
    # yes/no with two texts (compared cell by cell) and an oxygen device column
    # with more texts than that (looked up): spelling, case and spaces are read
    # the same way in both, and a text that is not a word of the column is named
    devices = ["none", "Nasal Cannula", "nasal-cannula", " facemask ", "CPAP", "bipap", "high flow nasal cannula", "venturi"]
    rows = [f"A,1,{d + 1},{device},{'Yes' if d % 2 else ' no '}" for d, device in enumerate(devices)]
    intake = intake_of("patient_id,infusion,day,o2_device,tocilizumab\n" + "\n".join(rows) + "\n")
    assert not intake.problems, messages(intake)
    assert intake.rows["o2_device"].to_list() == [
        "none", "nasal_cannula", "nasal_cannula", "facemask", "cpap", "bipap", "high_flow_nasal_cannula", "venturi",
    ]
    assert intake.rows["tocilizumab"].to_list() == [False, True] * 4

    bad = intake_of("patient_id,infusion,day,o2_device,tocilizumab\n" + "\n".join(rows) + "\nB,1,1,tent,maybe\n")
    text = "\n".join(messages(bad))
    assert "row 10, column o2_device" in text and "'tent'" in text
    assert "row 10, column tocilizumab" in text and "'maybe'" in text
    assert assessed(bad) == [("A", 1)]
