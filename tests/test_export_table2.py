"""Table 2 (outputs.md §3): half-up rounding from the exact fraction, cells,
counts equal to the cohort block of the JSON document, treatment counts
equal to the registry rows, and the three formats."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import polars as pl
import pytest

from carscore.assess import assess_paths, load_engine
from carscore.cohort import cohort_of
from carscore.export.dates import no_dates
from carscore.export.registry import registry_rows
from carscore.export.table2 import count_cell, median_cell, percent_text, table2
from carscore.export.table2_formats import CSV_COLUMNS, html, long_table, markdown

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [str(ROOT / "sample_cases" / "tp53_ball_two_infusions.csv"), str(ROOT / "sample_cases" / "synthetic_grades.csv")]


@pytest.mark.parametrize(
    ("k", "n", "text"),
    [
        (1, 16, "6.3"),
        (1, 8, "12.5"),
        (2, 3, "66.7"),
        (1, 6, "16.7"),
        (1, 2000, "0.1"),
        (1, 3, "33.3"),
        (0, 5, "0.0"),
        (7, 7, "100.0"),
    ]
    + [(3, 16, "18.8"), (5, 16, "31.3"), (1, 40, "2.5"), (1, 80, "1.3")],
)
def test_percent_is_rounded_half_up_from_the_exact_fraction(k: int, n: int, text: str) -> None:
    assert percent_text(Fraction(100 * k, n)) == text


def test_cells() -> None:
    assert count_cell(1, 16).text == "1 (6.3)"
    assert count_cell(0, 0).text == "0 (\u2013)" and count_cell(0, 0).percent is None
    assert median_cell({"n": 4, "median": 4.5, "min": 3, "max": 9}).text == "4.5 (3\u20139)"
    assert median_cell({"n": 3, "median": 4, "min": 1, "max": 14}).text == "4 (1\u201314)"
    assert median_cell({"n": 0, "median": None, "min": None, "max": None}).text == "\u2013"


@pytest.fixture(scope="module")
def run():
    a = assess_paths(SAMPLES, load_engine(None, systems=["lee2014", "cres"]), None)
    stats = cohort_of(a)
    return a, stats, table2(a, stats)


def _cell(table, row_id: str, system: str):
    return next(r for r in table.rows if r.row_id == row_id).cells.get(system)


def test_counts_equal_the_cohort_counts(run) -> None:
    _, stats, table = run
    assert [name for _, name in table.systems] == ["ASTCT 2019", "Lee 2014", "CARTOX-10"]
    assert _cell(table, "courses", "astct").n == stats["n_patients"] == 6
    for system, suffix, toxicity in [
        ("astct", "", "crs"),
        ("lee2014", "_lee2014", "crs"),
        ("astct", "", "icans"),
        ("cres", "", "cres"),
    ]:
        any_rate = stats[f"{toxicity}_any{suffix}"]
        assert _cell(table, f"{toxicity}_assessed", system).n == any_rate["n"]
        for name in ("any", "grade3plus"):
            rate = stats[f"{toxicity}_{name}{suffix}"]
            cell = _cell(table, f"{toxicity}_{name}", system)
            assert (cell.n, cell.denominator) == (rate["count"], rate["n"])
        for k in range(6):
            cell = _cell(table, f"{toxicity}_max_grade_{k}", system)
            assert (cell.n, cell.denominator) == (stats[f"{toxicity}_grades{suffix}"][str(k)], any_rate["n"])
        for what in ("onset_day", "days"):
            described, cell = stats[f"{toxicity}_{what}{suffix}"], _cell(table, f"{toxicity}_{what}", system)
            assert (cell.n, cell.median, cell.low, cell.high) == (
                described["n"],
                described["median"],
                described["min"],
                described["max"],
            )
    # ICANS rows only in the reference column; CRES rows only in its own
    assert _cell(table, "icans_any", "lee2014") is None and _cell(table, "cres_any", "astct") is None
    assert _cell(table, "crs_any", "cres") is None


def test_treatment_counts_equal_the_registry_rows(run) -> None:
    a, stats, table = run
    rows = registry_rows(a, no_dates(a), "cibmtr")
    for toxicity in ("CRS", "ICANS"):
        mine = rows.filter(pl.col("toxicity") == toxicity)
        for treatment in ("tocilizumab", "corticosteroids"):
            treated = mine.filter(pl.col(treatment) == "yes").select("patient_id", "infusion").unique().height
            cell = _cell(table, f"{toxicity.lower()}_{treatment}", "astct")
            assert (cell.n, cell.denominator) == (treated, stats[f"{toxicity.lower()}_any"]["count"])
    assert _cell(table, "crs_tocilizumab", "astct").text == "5 (83.3)"
    assert _cell(table, "crs_other_anticytokine", "astct").text == "\u2013"  # no input has the column


def test_markdown(run) -> None:
    _, _, table = run
    text = markdown(table)
    lines = text.splitlines()
    assert lines[0] == "| Characteristic | ASTCT 2019 | Lee 2014 | CARTOX-10 |"
    assert "| Courses, N | 6 | 6 | 6 |" in lines
    assert "| CRS, grade \u2265 3, n (%) | 2 (33.3) | 1 (16.7) |  |" in lines
    assert any(line.startswith("1. N = 6 courses") for line in lines)
    assert any("half up" in line for line in lines)


def test_long_csv(run) -> None:
    _, _, table = run
    long = long_table(table)
    assert long.columns == CSV_COLUMNS
    back = pl.read_csv(io.BytesIO(long.write_csv().encode()), infer_schema=False)
    crs = back.filter((pl.col("row_id") == "crs_grade3plus") & (pl.col("system") == "astct")).row(0, named=True)
    assert (crs["n"], crs["denominator"], crs["percent"], crs["text"]) == ("2", "6", "33.3", "2 (33.3)")
    onset = back.filter((pl.col("row_id") == "icans_onset_day") & (pl.col("system") == "astct")).row(0, named=True)
    assert (onset["median"], onset["min"], onset["max"], onset["denominator"]) == ("9.5", "3", "16", None)
    courses = back.filter(pl.col("row_id") == "courses")
    assert courses["system"].to_list() == ["astct", "lee2014", "cres"] and courses["percent"].null_count() == 3
    assert back.filter(pl.col("system") == "lee2014")["row_id"].str.starts_with("icans").sum() == 0


def test_html(run) -> None:
    _, _, table = run
    page = html(table)
    for tag in ("<caption>", "<thead>", "<tbody>", "<tfoot>"):
        assert page.count(tag) == 1
    assert page.count("<table>") == 1 and "<script" not in page and "http" not in page and "src=" not in page
    assert "<td>2 (33.3)</td>" in page and '<th scope="col">ASTCT 2019</th>' in page
    assert all(cell.text in page for row in table.rows for cell in row.cells.values())
