"""Concordance of grading systems (criteria §6.10): shares over the courses,
each system against the reference, cross-tables, Wilson intervals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DEMO_SYSTEM
from typer.testing import CliRunner

from carscore.cli.app import app
from carscore.compare import compare

ROOT = Path(__file__).resolve().parent.parent


def test_juliet_like_regrade_gives_the_published_shares() -> None:
    # Schuster 2020 (JULIET, reference Penn, 64 patients with CRS): Lee 39 concordant, 20 lower, 5 higher
    courses = (
        [{"crs_max_grade_penn": 2, "crs_max_grade_lee2014": 2}] * 39
        + [{"crs_max_grade_penn": 3, "crs_max_grade_lee2014": 2}] * 20
        + [{"crs_max_grade_penn": 1, "crs_max_grade_lee2014": 2}] * 5
        + [{"crs_max_grade_penn": 0, "crs_max_grade_lee2014": 0}] * 10
    )
    result = compare(courses, ["penn", "lee2014"], reference="penn")
    lee = result["versus_reference"]["lee2014"]
    assert lee["n"] == 64  # the courses without CRS in either are no concordant CRS
    assert (lee["concordant"]["count"], lee["lower"]["count"], lee["higher"]["count"]) == (39, 20, 5)
    assert round(lee["concordant"]["rate"] * 100, 1) == 60.9
    assert (round(lee["concordant"]["ci_low"] * 100, 1), round(lee["concordant"]["ci_high"] * 100, 1)) == (48.7, 71.9)
    assert (round(lee["lower"]["ci_low"] * 100, 1), round(lee["lower"]["ci_high"] * 100, 1)) == (21.2, 43.4)
    assert lee["cross_table"]["3"]["2"] == 20 and lee["cross_table"]["0"]["0"] == 10
    assert result["n_courses"] == 74 and result["same_max_grade"]["count"] == 49
    assert result["same_crs_diagnosis"]["count"] == 74 and result["crs_in_every_system"]["count"] == 64


def test_a_course_a_system_cannot_grade_is_left_out_and_named() -> None:
    courses = [
        {"patient_id": "A", "infusion": 1, "crs_max_grade": 1, "crs_max_grade_demo": None},
        {"patient_id": "B", "infusion": 1, "crs_max_grade": 2, "crs_max_grade_demo": 2},
    ]
    result = compare(courses, ["astct", "demo"])
    assert (result["n_courses"], result["n_excluded"], result["excluded"]) == (1, 1, ["A (infusion 1)"])


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_compare_on_the_sample_cohort(fmt: str, tmp_path: Path) -> None:
    rules = tmp_path / "demo.yaml"
    rules.write_text(DEMO_SYSTEM, encoding="utf-8")
    result = CliRunner().invoke(
        app, ["compare", str(ROOT / "sample_cases"), "--rules", str(rules), "--systems", "demo", "-f", fmt]
    )
    assert result.exit_code == 0, result.output
    if fmt == "json":
        comparison = json.loads(result.stdout)["comparison"]
        assert comparison["systems"] == ["astct", "demo"] and comparison["n_courses"] == 6
        assert sum(sum(row.values()) for row in comparison["versus_reference"]["demo"]["cross_table"].values()) == 6
    elif fmt == "csv":
        assert result.stdout.splitlines()[0].startswith("system,measure,count,n,rate")
    else:
        assert "same maximum grade" in result.stdout


def test_compare_needs_the_reference_among_the_systems(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["compare", str(ROOT / "sample_cases"), "--systems", "astct", "--reference", "penn"])
    assert result.exit_code == 2 and "reference 'penn'" in result.stderr
