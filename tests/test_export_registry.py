"""CIBMTR 4100 and EBMT MED-A rows (outputs.md §0, §2): windows, episodes and
their resolution, treatment during an episode, dates, and the rows checked
against the JSON days of the same run."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import write_rows

from carscore import report
from carscore.assess import assess_paths, load_engine
from carscore.compile import COURSE, DAY
from carscore.export.dates import course_dates, no_dates
from carscore.export.episodes import episode_days, episodes
from carscore.export.registry import COLUMNS, registry_rows, window_bounds, window_of

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [str(ROOT / "sample_cases" / "tp53_ball_two_infusions.csv"), str(ROOT / "sample_cases" / "synthetic_grades.csv")]
INFUSIONS = ROOT / "tests" / "fixtures" / "export" / "infusions.csv"


@pytest.mark.parametrize(
    ("day", "window", "start", "end"),
    [(0, "D100", 0, 100), (100, "D100", 0, 100), (101, "M6", 101, 182), (182, "M6", 101, 182), (183, "Y1", 183, 365)]
    + [(365, "Y1", 183, 365), (366, "Y2", 366, 730), (730, "Y2", 366, 730), (731, "Y3", 731, 1095)],
)
def test_reporting_windows(day: int, window: str, start: int, end: int) -> None:
    index = pl.select(window_of(pl.lit(day))).item()
    assert window_bounds(index) == (window, start, end)


def _episodes_of(grades: list[int | None], start: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    days = pl.DataFrame(
        {COURSE: [0] * len(grades), DAY: list(range(-1, len(grades) - 1)), "g": grades},
        schema={COURSE: pl.UInt32, DAY: pl.Int64, "g": pl.Int64},
    )
    per_day = episode_days(days, "g", start)
    return per_day, episodes(per_day)


def test_an_episode_ends_on_the_first_recorded_grade_0_and_null_days_do_not_end_it() -> None:
    # days -1 .. 8: a grade on day -1 opens nothing; day 2 is null; day 3 graded 0 ends it
    per_day, spans = _episodes_of([2, 0, 1, None, 0, None, 2, 3, None, None])
    assert spans.select("episode", "onset_day", "resolution_day").rows() == [(1, 1, 3), (2, 5, None)]
    assert per_day["episode"].to_list() == [None, None, 1, 1, None, None, 2, 2, 2, 2]


def _course(tmp_path: Path, rows: list[dict]) -> Path:
    return write_rows(tmp_path / "course.csv", [{"patient_id": "R1", "infusion": 1, **r} for r in rows])


def _registry(path: Path, infusions: Path | None = None, registry: str = "cibmtr") -> pl.DataFrame:
    a = assess_paths([str(path)], load_engine())
    dates = course_dates(a, infusions) if infusions else no_dates(a)
    return registry_rows(a, dates, registry)


def test_treatment_counts_only_during_an_episode(tmp_path: Path) -> None:
    # tocilizumab on day 0 is prophylaxis (before onset); steroids on day 3 are on the resolution day
    rows = [
        {"day": 0, "temp_c": 37.0, "tocilizumab": "yes", "corticosteroids": "no"},
        {"day": 1, "temp_c": 38.6, "tocilizumab": "no", "corticosteroids": "no"},
        {"day": 2, "temp_c": 38.2, "tocilizumab": "no", "corticosteroids": "no"},
        {"day": 3, "temp_c": 37.0, "tocilizumab": "no", "corticosteroids": "yes"},
    ]
    crs = _registry(_course(tmp_path, rows)).filter(pl.col("toxicity") == "CRS").row(0, named=True)
    assert (crs["occurred"], crs["onset_day"], crs["resolution_day"]) == ("yes", 1, 3)
    assert (crs["tocilizumab"], crs["corticosteroids"], crs["therapy_given"]) == ("no", "no", "no")
    assert crs["other_anticytokine"] is None  # the input has no such column


def test_a_dose_inside_the_episode_and_in_every_open_toxicity(tmp_path: Path) -> None:
    rows = [
        {"day": 0, "temp_c": 38.5, "ice_score": 10, "corticosteroids": "no"},
        {"day": 1, "temp_c": 38.5, "ice_score": 6, "corticosteroids": "yes"},
        {"day": 1, "time": "20:00", "temp_c": 37.2, "ice_score": 6, "corticosteroids": "no"},
        {"day": 2, "temp_c": 37.0, "ice_score": 10, "corticosteroids": "no"},
    ]
    table = _registry(_course(tmp_path, rows))
    by_tox = {r["toxicity"]: r for r in table.iter_rows(named=True)}
    # one row of day 1 says yes: the day counts as given, for CRS and ICANS alike
    assert by_tox["CRS"]["corticosteroids"] == "yes" and by_tox["ICANS"]["corticosteroids"] == "yes"
    assert by_tox["CRS"]["tocilizumab"] is None and by_tox["CRS"]["therapy_given"] == "yes"


def test_an_unresolved_episode_runs_to_the_last_day_and_windows_follow_it(tmp_path: Path) -> None:
    rows = [
        {"day": 0, "temp_c": 37.0, "tocilizumab": "no"},
        {"day": 99, "temp_c": 38.5, "tocilizumab": "no"},
        {"day": 150, "temp_c": 38.6, "tocilizumab": "yes"},
        {"day": 200, "tocilizumab": "yes"},
        {"day": 400, "temp_c": 38.9, "tocilizumab": "no"},
    ]
    infusions = write_rows(tmp_path / "inf.csv", [{"patient_id": "R1", "infusion": 1, "infusion_datetime": "2024-01-31"}])
    crs = _registry(_course(tmp_path, rows), infusions).filter(pl.col("toxicity") == "CRS")
    assert crs["window"].to_list() == ["D100", "M6", "Y1", "Y2"]
    d100, m6, y1, y2 = crs.iter_rows(named=True)
    assert (d100["occurred"], d100["previously_reported"], d100["onset_day"], d100["max_grade"]) == ("yes", "no", 99, 1)
    assert d100["tocilizumab"] == "no" and d100["resolution_day"] is None and d100["data_through_day"] == 99
    assert (m6["occurred"], m6["previously_reported"], m6["onset_day"], m6["tocilizumab"]) == ("yes", "yes", 99, "yes")
    # day 200 has no CRS data: not graded, so the window's occurrence is blank, yet the episode stays open
    assert (y1["occurred"], y1["max_grade"], y1["tocilizumab"], y1["data_through_day"]) == (None, None, None, 200)
    assert (y2["occurred"], y2["onset_day"], y2["previously_reported"]) == ("yes", 99, "yes")
    assert (m6["window_start_date"], m6["window_end_date"]) == (date(2024, 5, 11), date(2024, 7, 31))  # days 101, 182
    assert m6["onset_date"] == date(2024, 1, 31) + timedelta(days=99) and m6["form"] == "4100 M6"


def test_a_window_with_graded_days_all_0(tmp_path: Path) -> None:
    rows = [{"day": 0, "temp_c": 37.0}, {"day": 1, "temp_c": 36.8}]
    crs = _registry(_course(tmp_path, rows), registry="ebmt").filter(pl.col("toxicity") == "CRS").row(0, named=True)
    assert (crs["occurred"], crs["max_grade"], crs["previously_reported"], crs["onset_day"]) == ("no", 0, None, None)
    assert crs["form"] == "MED-A D100" and crs["therapy_given"] is None and crs["infusion_date"] is None


@pytest.fixture(scope="module")
def sample():
    a = assess_paths(SAMPLES, load_engine())
    doc = json.loads(json.dumps(report.build_document(a), default=str))
    return doc, registry_rows(a, course_dates(a, INFUSIONS), "cibmtr")


def test_rows_agree_with_the_json_days(sample) -> None:
    doc, table = sample
    assert table.columns == COLUMNS
    infused = {
        (r["patient_id"], int(r["infusion"])): date.fromisoformat(r["infusion_datetime"][:10])
        for r in pl.read_csv(INFUSIONS, infer_schema=False).iter_rows(named=True)
    }
    for patient in doc["patients"]:
        key = (patient["patient_id"], patient["infusion"])
        mine = table.filter((pl.col("patient_id") == key[0]) & (pl.col("infusion") == key[1]))
        assert mine["toxicity"].to_list() == ["CRS", "ICANS"]  # every sample course ends within D100
        for row in mine.iter_rows(named=True):
            grades = [d[f"{row['toxicity'].lower()}_grade"] for d in patient["days"] if 0 <= d["day"] <= 100]
            graded = [g for g in grades if g is not None]
            expected = None if not graded else ("yes" if max(graded) >= 1 else "no")
            assert row["occurred"] == expected
            assert row["max_grade"] == (max(graded) if graded else None)
            summary = patient["summary"][f"{row['toxicity'].lower()}_onset_day"]
            assert row["onset_day"] == (summary if expected == "yes" else None)
            assert row["infusion_date"] == infused[key]
            if row["onset_day"] is not None:
                assert row["onset_date"] == infused[key] + timedelta(days=row["onset_day"])
            assert row["data_through_day"] == max(d["day"] for d in patient["days"])


def test_the_sample_treatments(sample) -> None:
    _, table = sample
    first = {
        r["toxicity"]: r
        for r in table.filter((pl.col("patient_id") == "TP53-BALL-01") & (pl.col("infusion") == 1)).iter_rows(named=True)
    }
    # tocilizumab on day 15, dexamethasone on day 16; ICANS on day 16 only (README)
    assert (first["CRS"]["tocilizumab"], first["CRS"]["corticosteroids"], first["CRS"]["resolution_day"]) == ("yes", "yes", 18)
    assert (first["ICANS"]["tocilizumab"], first["ICANS"]["corticosteroids"], first["ICANS"]["resolution_day"]) == (
        "no",
        "yes",
        17,
    )
    assert first["CRS"]["other_anticytokine"] is None and first["CRS"]["therapy_given"] == "yes"
    second_icans = table.filter(
        (pl.col("patient_id") == "TP53-BALL-01") & (pl.col("infusion") == 2) & (pl.col("toxicity") == "ICANS")
    )
    assert second_icans.row(0, named=True)["occurred"] == "no" and second_icans.row(0, named=True)["tocilizumab"] is None
