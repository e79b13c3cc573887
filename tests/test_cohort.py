"""Cohort assessment: statistics by hand, Wilson intervals against a published
study, fault isolation across files, and the CSV summary columns."""

from __future__ import annotations

import csv
import functools
import io
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import rows_to_csv
from hypothesis import given
from hypothesis import strategies as st

from carscore.cohort import cohort_statistics, wilson_interval
from carscore.report import SUMMARY_KEYS

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "carscore.cli.app", *args], cwd=cwd, capture_output=True, text=True)


# --- Wilson intervals ---------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "n", "low", "high"),
    [
        # Qi Y et al., Blood 2022;139:3376: marrow ORR 87.5 % (95 % CI 75.3-94.1), CNS remission 85.4 % (72.8-92.8)
        (42, 48, 75.3, 94.1),
        (41, 48, 72.8, 92.8),
        # Newcombe RG, Stat Med 1998;17:857, Table I: 81/263 -> 0.2553-0.3662; 15/148 -> 0.0624-0.1605
        (81, 263, 25.53, 36.62),
        (15, 148, 6.24, 16.05),
        (0, 20, 0.0, 16.11),
    ],
)
def test_wilson_interval_matches_published(count: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(count, n)
    digits = 1 if n == 48 else 2
    assert round(100 * lo, digits) == pytest.approx(low, abs=10 ** -digits)
    assert round(100 * hi, digits) == pytest.approx(high, abs=10 ** -digits)


def test_wilson_interval_without_patients_is_unknown() -> None:
    assert wilson_interval(0, 0) == (None, None)


def test_study_shaped_cohort_reports_published_rates() -> None:
    """48 courses, 42 marrow responders, 41 CNS remissions, 9 grade >= 3 CRS (Qi 2022)."""
    summaries = []
    for i in range(48):
        summaries.append({
            "best_bm_response": "CR" if i < 30 else ("CRi" if i < 42 else "NR"),
            "cns_status_baseline": "CNS-3",
            "cns_remission_day": 28 if i < 41 else None,
            "crs_max_grade": 3 if i < 9 else 1,
            "icans_max_grade": 0,
            "crs_onset_day": 2, "crs_days": 4,
        })
    stats = cohort_statistics(summaries)
    orr, cns = stats["orr"], stats["cns_remission"]
    assert (orr["count"], orr["n"]) == (42, 48)
    assert f"{100 * orr['rate']:.1f} ({100 * orr['ci_low']:.1f}-{100 * orr['ci_high']:.1f})" == "87.5 (75.3-94.1)"
    assert f"{100 * cns['rate']:.1f} ({100 * cns['ci_low']:.1f}-{100 * cns['ci_high']:.1f})" == "85.4 (72.8-92.8)"
    assert stats["crs_grade3plus"]["count"] == 9
    assert round(100 * stats["crs_grade3plus"]["rate"], 1) == 18.8
    assert stats["crs_grades"] == {"0": 0, "1": 39, "2": 0, "3": 9, "4": 0, "5": 0}


# --- a small cohort checked by hand ----------------------------------------------


def _patient(pid: str, crs_peak_day: int | None, crs_temp: float, marrow: str, cns_base: str, cns_after: str,
             relapse: bool = False) -> list[dict]:
    rows: list[dict] = [{"patient_id": pid, "day": -3, "age_years": 30, "csf_wbc": 10 if cns_base == "CNS-3" else 1,
                         "csf_blasts": cns_base != "CNS-1", "csf_rbc": 0}]
    for day in range(0, 8):
        row = {"patient_id": pid, "day": day, "temp_c": 37.0, "hypotension": False, "o2_device": "none",
               "ice_score": 10, "consciousness": "normal"}
        if crs_peak_day is not None and day in (crs_peak_day, crs_peak_day + 1):
            row["temp_c"] = crs_temp
            if crs_temp >= 39.5:
                row["vasopressors"] = 1
        rows.append(row)
    blasts = {"CR": 1.0, "CRi": 2.0, "NR": 40.0}[marrow]
    anc = 2.0 if marrow == "CR" else 0.4
    rows.append({"patient_id": pid, "day": 28, "bm_blasts_pct": blasts, "bm_mrd_pct": 0 if marrow != "NR" else 30,
                 "mrd_method": "flow", "pb_blasts_pct": 0, "anc": anc, "platelets": 150,
                 "csf_wbc": 1, "csf_rbc": 0, "csf_blasts": cns_after != "CNS-1"})
    if relapse:
        rows.append({"patient_id": pid, "day": 60, "bm_blasts_pct": 20, "pb_blasts_pct": 5, "anc": 2, "platelets": 120})
    return rows


COHORT = [
    _patient("P1", 2, 38.5, "CR", "CNS-3", "CNS-1"),  # CRS 1, CR MRD-neg, CNS remission day 28
    _patient("P2", 1, 39.8, "CR", "CNS-1", "CNS-1", relapse=True),  # CRS 3 (one vasopressor), relapse day 60
    _patient("P3", None, 37.0, "CRi", "CNS-3", "CNS-3"),  # no CRS, CRi, CNS not cleared (blasts, WBC 1: CNS-2)
    _patient("P4", 3, 38.2, "NR", "CNS-2", "CNS-1"),  # CRS 1, NR, CNS remission
]


def test_small_cohort_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "cohort.csv"
    path.write_text(rows_to_csv([r for rows in COHORT for r in rows]))
    result = run("cohort", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    summaries = {p["patient_id"]: p["summary"] for p in doc["patients"]}
    assert [p["patient_id"] for p in doc["patients"]] == ["P1", "P2", "P3", "P4"]
    assert "days" not in doc["patients"][0]
    assert {k: summaries[k]["crs_max_grade"] for k in summaries} == {"P1": 1, "P2": 3, "P3": 0, "P4": 1}
    assert {k: summaries[k]["best_bm_response"] for k in summaries} == {"P1": "CR", "P2": "CR", "P3": "CRi", "P4": "NR"}
    assert summaries["P2"]["bm_relapse_day"] == 60
    assert {k: summaries[k]["cns_remission_day"] for k in summaries} == {"P1": 28, "P2": None, "P3": None, "P4": 28}
    c = doc["cohort"]
    assert c["n_patients"] == 4
    assert (c["crs_any"]["count"], c["crs_any"]["n"]) == (3, 4)
    assert (c["crs_grade3plus"]["count"], c["crs_grade3plus"]["n"]) == (1, 4)
    assert (c["orr"]["count"], c["orr"]["n"]) == (3, 4)
    assert (c["cr"]["count"], c["cr"]["n"]) == (2, 4)
    assert (c["mrd_negative_remission"]["count"], c["mrd_negative_remission"]["n"]) == (3, 4)
    # CNS remission among CNS-2/3 baselines only: P1, P3, P4 -> P1 and P4
    assert (c["cns_remission"]["count"], c["cns_remission"]["n"]) == (2, 3)
    # relapse among responders (P1, P2, P3): P2
    assert (c["relapse"]["count"], c["relapse"]["n"]) == (1, 3)
    assert c["crs_any"]["rate"] == pytest.approx(0.75)
    lo, hi = wilson_interval(3, 4)
    assert (c["crs_any"]["ci_low"], c["crs_any"]["ci_high"]) == pytest.approx((lo, hi))
    assert c["crs_grades"] == {"0": 1, "1": 2, "2": 0, "3": 1, "4": 0, "5": 0}
    assert c["crs_onset_day"] == {"n": 3, "median": 2, "min": 1, "max": 3}
    assert c["crs_days"] == {"n": 3, "median": 2, "min": 2, "max": 2}


def test_folder_with_one_broken_file(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    (folder / "sub").mkdir(parents=True)
    for i, rows in enumerate(COHORT[:3]):
        (folder / f"p{i}.csv").write_text(rows_to_csv(rows))
    # a multi-patient file beside single-patient ones
    two = [dict(r, patient_id="P5") for r in COHORT[3]] + [{"patient_id": "P6", "day": 1, "temp_c": 37.5}]
    (folder / "sub" / "two.csv").write_text(rows_to_csv(two))
    broken = folder / "sub" / "broken.csv"
    broken.write_text("patient_id,day,temp_c\nB1,1,101.4\n")
    result = run("cohort", str(folder), "--format", "json")
    assert result.returncode == 1
    assert "broken.csv" in result.stderr and "row 2" in result.stderr and "temp_c" in result.stderr
    assert "101.4" in result.stderr
    assert "Traceback" not in result.stderr
    doc = json.loads(result.stdout)
    ids = sorted(p["patient_id"] for p in doc["patients"])
    assert ids == ["P1", "P2", "P3", "P5", "P6"]
    assert doc["cohort"]["n_patients"] == 5
    assert any(e["file"].endswith("broken.csv") and e["column"] == "temp_c" for e in doc["errors"])


def test_duplicate_patient_across_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(rows_to_csv(COHORT[0]))
    (tmp_path / "b.csv").write_text(rows_to_csv(COHORT[0]))
    (tmp_path / "c.csv").write_text(rows_to_csv(COHORT[1]))
    result = run("cohort", str(tmp_path), "--format", "json")
    assert result.returncode == 1
    assert "b.csv" in result.stderr and "P1" in result.stderr and "a.csv" in result.stderr
    doc = json.loads(result.stdout)
    assert [p["patient_id"] for p in doc["patients"]] == ["P1", "P2"]
    assert doc["patients"][0]["file"].endswith("a.csv")


def test_second_infusion_in_another_file_is_its_own_course(tmp_path: Path) -> None:
    first = COHORT[0]
    second = [dict(r, infusion=2) for r in COHORT[1]]
    for r in second:
        r["patient_id"] = "P1"
    (tmp_path / "a.csv").write_text(rows_to_csv(first))
    (tmp_path / "b.csv").write_text(rows_to_csv(second))
    result = run("cohort", str(tmp_path), "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [(p["patient_id"], p["infusion"]) for p in doc["patients"]] == [("P1", 1), ("P1", 2)]


def test_cohort_csv_has_one_row_per_course_named_as_summary_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(rows_to_csv(COHORT[0]))
    result = run("cohort", str(path), "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 1
    assert list(rows[0])[:3] == ["patient_id", "infusion", "file"]
    for key in SUMMARY_KEYS:
        assert key in rows[0]
    assert rows[0]["crs_max_grade"] == "1"
    assert rows[0]["best_bm_response"] == "CR"


def test_cohort_days_option_includes_days(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(rows_to_csv(COHORT[0]))
    doc = json.loads(run("cohort", str(path), "--format", "json", "--days").stdout)
    days = doc["patients"][0]["days"]
    assert [d["day"] for d in days] == [-3, 0, 1, 2, 3, 4, 5, 6, 7, 28]
    assert days[3]["reasons"]["crs"].startswith("fever")


def test_cohort_table_reads_like_a_paper(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(rows_to_csv([r for rows in COHORT for r in rows]))
    result = subprocess.run([sys.executable, "-m", "carscore.cli.app", "cohort", str(path)], cwd=ROOT,
                            capture_output=True, text=True, env={"NO_COLOR": "1", "COLUMNS": "150", "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert "Overall marrow response (CR + CRi)" in result.stdout
    assert "3/4" in result.stdout and "75.0" in result.stdout
    low, high = wilson_interval(3, 4)
    assert f"{100 * low:.1f}–{100 * high:.1f}" in result.stdout


def test_toxicity_rates_count_only_courses_where_the_toxicity_was_graded() -> None:
    summaries = [
        {"crs_max_grade": 2, "icans_max_grade": None},
        {"crs_max_grade": 0, "icans_max_grade": 1},
        {"crs_max_grade": None, "icans_max_grade": 0},
    ]
    stats = cohort_statistics(summaries)
    assert (stats["crs_any"]["count"], stats["crs_any"]["n"]) == (1, 2)
    assert (stats["icans_any"]["count"], stats["icans_any"]["n"]) == (1, 2)
    assert stats["orr"]["n"] == 3


def test_other_grading_systems_get_their_own_rates_and_distributions() -> None:
    from carscore.cohort import cohort_statistics

    summaries = [
        {"crs_max_grade": 1, "crs_max_grade_demo": 3, "cres_max_grade": 0},
        {"crs_max_grade": 0, "crs_max_grade_demo": 1, "cres_max_grade": 2},
        {"crs_max_grade": None, "crs_max_grade_demo": None, "cres_max_grade": None},
    ]
    stats = cohort_statistics(summaries)
    assert (stats["crs_any_demo"]["count"], stats["crs_any_demo"]["n"]) == (2, 2)
    assert (stats["crs_grade3plus_demo"]["count"], stats["crs_grade3plus_demo"]["n"]) == (1, 2)
    assert stats["crs_grades_demo"]["3"] == 1 and stats["crs_grades_demo"]["1"] == 1
    assert (stats["cres_any"]["count"], stats["cres_any"]["n"]) == (1, 2)
    assert stats["cres_grades"]["2"] == 1


def test_the_terminal_the_report_and_the_rates_csv_label_each_rate_alike() -> None:
    """One list of labelled rates (cohort.rate_labels) serves every view of the cohort."""
    from carscore.assess import assess_paths, load_engine
    from carscore.cohort import OUTCOME_LABELS, cohort_of, rate_labels
    from carscore.export.rates import rates_table
    from carscore.presentation import grade_views, rate_views

    engine = load_engine()
    labels = rate_labels(grade_views(engine.rulesets), rate_views(engine.rulesets))
    keys = list(labels)
    assert keys[: len(OUTCOME_LABELS)] == list(OUTCOME_LABELS)
    assert labels["crs_grade3plus"] == "CRS, grade \u2265 3" and labels["icans_any"] == "ICANS, any grade"
    assert keys[-1] == "iec_hs_suspected"  # the declared rates come last
    a = assess_paths([str(Path(__file__).parent.parent / "sample_cases")], engine)
    table = rates_table(cohort_of(a), engine.rulesets)
    written = dict(zip(table["key"], table["label"]))
    assert set(labels) <= set(written)  # the CSV keeps the JSON's order, and every labelled rate
    assert all(written[k] == v for k, v in labels.items() if k in written)


# --- the counts polars makes are those a plain reading of the definitions gives ----


def _reference_statistics(summaries: list[dict], grades: list[str], rates: list) -> dict:
    """The cohort statistics computed course by course, in plain Python, as
    contract §2 defines them: the oracle for cohort_statistics."""
    import statistics

    from carscore.cohort import rate
    from carscore.presentation import COHORT_RATES

    def describe(values: list) -> dict:
        if not values:
            return {"n": 0, "median": None, "min": None, "max": None}
        return {"n": len(values), "median": statistics.median(values), "min": min(values), "max": max(values)}

    out: dict = {"n_patients": len(summaries), "confidence": 0.95}
    for pattern in grades:
        key = pattern.replace("*", "max_grade", 1)
        graded = [s for s in summaries if s.get(key) is not None]
        for name, least in COHORT_RATES:
            out[pattern.replace("*", name, 1)] = rate(sum(1 for s in graded if s[key] >= least), len(graded))
        counts = {str(g): 0 for g in range(6)}
        for s in graded:
            counts[str(int(s[key]))] += 1
        out[pattern.replace("*", "grades", 1)] = counts
        onset, days = pattern.replace("*", "onset_day", 1), pattern.replace("*", "days", 1)
        out[onset] = describe([s[onset] for s in summaries if s.get(onset) is not None])
        out[days] = describe([s[days] for s in summaries if s.get(days) and s.get(onset) is not None])
    responder = [s for s in summaries if s.get("best_bm_response") in ("CR", "CRi")]
    involved = [s for s in summaries if s.get("cns_status_baseline") in ("CNS-2", "CNS-3")]
    out["orr"] = rate(len(responder), len(summaries))
    out["cr"] = rate(sum(1 for s in summaries if s.get("best_bm_response") == "CR"), len(summaries))
    out["mrd_negative_remission"] = rate(sum(1 for s in summaries if s.get("mrd_negative_remission") is True), len(summaries))
    out["cns_remission"] = rate(sum(1 for s in involved if s.get("cns_remission_day") is not None), len(involved))
    relapsed = sum(1 for s in responder if s.get("bm_relapse_day") is not None or s.get("cns_relapse_day") is not None)
    out["relapse"] = rate(relapsed, len(responder))
    for view in rates:
        known = [s for s in summaries if s.get(view.name) is not None]
        out[view.rate] = rate(sum(1 for s in known if view.counts(s[view.name])), len(known))
    return out


def _maybe(strategy):
    return st.one_of(st.none(), strategy)


_DAY = st.one_of(st.integers(-10, 60), st.integers(-20, 120).map(lambda x: x / 2))
_SUMMARY = st.fixed_dictionaries(
    {
        "crs_max_grade": _maybe(st.integers(0, 5)),
        "crs_onset_day": _maybe(_DAY),
        "crs_days": _maybe(st.integers(0, 20)),
        "icans_max_grade": _maybe(st.integers(0, 5)),
        "icans_onset_day": _maybe(_DAY),
        "icans_days": _maybe(st.integers(0, 20)),
        "best_bm_response": _maybe(st.sampled_from(["CR", "CRi", "MLFS", "NR", "PD"])),
        "cns_status_baseline": _maybe(st.sampled_from(["CNS-1", "CNS-2", "CNS-3"])),
        "mrd_negative_remission": _maybe(st.booleans()),
        "cns_remission_day": _maybe(st.integers(0, 90)),
        "bm_relapse_day": _maybe(st.integers(0, 365)),
        "cns_relapse_day": _maybe(st.integers(0, 365)),
        "icaht_early_grade": _maybe(st.integers(0, 4)),
        "iec_hs_suspected": _maybe(st.booleans()),
    }
)


@functools.cache
def _declared_rates() -> list:
    from carscore.assess import load_engine
    from carscore.presentation import rate_views

    rates = [v for v in rate_views(load_engine().rulesets) if v.name in ("icaht_early_grade", "iec_hs_suspected")]
    assert [v.kind for v in rates] == ["grade", "flag"]
    return rates


@given(summaries=st.lists(_SUMMARY, min_size=1, max_size=30))
def test_cohort_statistics_count_as_the_definitions_read(summaries: list[dict]) -> None:
    rates = _declared_rates()
    grades = ["crs_*", "icans_*"]
    assert cohort_statistics(summaries, 0.95, grades, rates) == _reference_statistics(summaries, grades, rates)


def test_a_cohort_of_no_courses_has_unknown_rates() -> None:
    for empty in ([], pl.DataFrame(schema={"crs_max_grade": pl.Int64, "best_bm_response": pl.String})):
        stats = cohort_statistics(empty, 0.95, ["crs_*"], [])
        assert stats["n_patients"] == 0
        assert stats["orr"] == {"count": 0, "n": 0, "rate": None, "ci_low": None, "ci_high": None}
        assert stats["crs_any"]["n"] == 0 and stats["crs_grades"]["0"] == 0
        assert stats["crs_onset_day"] == {"n": 0, "median": None, "min": None, "max": None}
