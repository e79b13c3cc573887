"""Laws of the day-by-day grading (criteria §0), as property tests.

1. Causal grading: appending later days to a course never changes what was
   decided for the days already there, except the results a rule declares as
   looking ahead (``engine.plan.looks_ahead``: day outputs, reason keys and
   flag ids).
2. A row is one assessment: writing a day's findings on one row, or split over
   two or three rows (each finding with the qualifiers of its own row), gives
   the same CRS and ICANS grades.
3. The order in which rows reach the engine never changes a result: rows out
   of course order are put in it first (each day's rows keep their order,
   which a blank clock time leaves as written).

Each law is a function of an engine that returns the violations it finds, so
that the tests at the end can run it on deliberately broken rule sets (fixed,
small examples) and check that it does catch them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
from conftest import engine_for, rows_to_csv
from hypothesis import given
from hypothesis import strategies as st
from test_properties import (
    ANY_AGE,
    BATCH,
    BOOLS,
    CONSCIOUSNESS,
    DEATH,
    EDEMA,
    ICE_ITEMS,
    MOTOR,
    O2_DEVICES,
    SEIZURE,
    any_day,
    batch,
    day_numbers,
    doses,
    flows,
    ints,
    opt,
    patient,
    pick,
    sbps,
    shown,
    temps,
)

from carscore.assess import assess_intake, load_engine
from carscore.compile import COURSE, DAY, FUNCTIONS
from carscore.engine import Engine
from carscore.intake import read_text
from carscore.report import day_rows, summary_rows
from carscore.ruleset import builtin_rules_dir

# ---------------------------------------------------------------------------
# grading with any engine


def grade(rows: list[dict[str, Any]], engine: Engine | None = None):
    """Grade rows as ONE CSV (one column set for every patient): per patient_id,
    its days (ascending) and its course summary."""
    engine = engine or engine_for()
    result = assess_intake(read_text(rows_to_csv(rows), "laws.csv"), engine)
    assert not result.intake.problems, [str(p) for p in result.intake.problems]
    names = dict(result.intake.courses.select(COURSE, "patient_id").iter_rows())
    days = {names[course]: d for course, d in day_rows(result).items()}
    summaries = {r["patient_id"]: r for r in summary_rows(result)}
    return days, summaries


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


times = st.integers(0, 24 * 60 - 1).map(clock)
yes_no = pick(["yes", "no"])

# ---------------------------------------------------------------------------
# Law 1: causal grading


def causal_violations(engine: Engine, courses, ahead: set[str] | None = None) -> list[str]:
    """Grade each course as it is (O<i>) and with its later rows appended (X<i>),
    in one CSV; every difference on a day of the shorter course, outside the
    look-ahead keys, is a violation. courses: (rows, later rows, age)."""
    ahead = set(engine.plan.looks_ahead) if ahead is None else ahead
    rows: list[dict[str, Any]] = []
    for i, (before, later, age) in enumerate(courses):
        assert all(r["day"] > max(b["day"] for b in before) for r in later)
        rows += patient(f"O{i}", before, age)
        rows += patient(f"X{i}", before + later, age)
    graded, _ = grade(rows, engine)
    out = []
    for i, (before, later, age) in enumerate(courses):
        short, longer = graded[f"O{i}"], graded[f"X{i}"]
        assert [d["day"] for d in short] == [d["day"] for d in longer[: len(short)]], (short, longer)
        for a, b in zip(short, longer):
            diffs = [(k, a[k], b[k]) for k in a if k not in ("day", "flags", "reasons") and k not in ahead and a[k] != b[k]]
            diffs += [
                (f"reasons.{k}", a["reasons"][k], b["reasons"].get(k))
                for k in a["reasons"]
                if k not in ahead and a["reasons"][k] != b["reasons"].get(k)
            ]
            flags_a = [f for f in a["flags"] if f not in ahead]
            flags_b = [f for f in b["flags"] if f not in ahead]
            if flags_a != flags_b:
                diffs.append(("flags", flags_a, flags_b))
            for key, was, became in diffs:
                out.append(
                    f"day {a['day']}: {key} was {was!r}, became {became!r} once later days were added\n"
                    f"  age {age}; course: {shown(before)}\n  later rows: {shown(later)}"
                )
    return out


# what one assessment may record, column by column (a column not drawn is blank);
# CRS signs and treatments come up most often, so that CRS episodes open and close
ROW_VALUES: dict[str, st.SearchStrategy] = {
    "temp_c": temps,
    "hypotension": yes_no,
    "sbp": sbps,
    "vasopressors": st.integers(0, 3),
    "vasopressin": yes_no,
    "o2_device": pick(O2_DEVICES),
    "o2_flow_lpm": flows,
    "o2_not_for_hypoxia": yes_no,
    "antipyretics": yes_no,
    "tocilizumab": doses,
    "corticosteroids": doses,
    "other_anticytokine": yes_no,
    "crs_other_cause": yes_no,
    "ice_score": st.integers(0, 10),
    "ice_items": st.none(),  # the five ICE items, drawn below
    "capd_score": st.integers(0, 32),
    "consciousness": pick(CONSCIOUSNESS),
    "seizure": pick(SEIZURE),
    "motor_weakness": pick(MOTOR),
    "cerebral_edema": pick(EDEMA),
    "icans_other_cause": yes_no,
    "death_cause": pick(DEATH),
    "anc": pick([0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 4.0]),
    "platelets": pick([5, 19, 20, 60, 100, 101, 250]),
    "wbc": st.integers(1, 500).map(lambda x: x / 10),
    "rbc": st.integers(10, 60).map(lambda x: x / 10),
    "csf_wbc": pick([0, 2, 4.9, 5, 6, 40, 300]),
    "csf_rbc": pick([0, 5, 9, 10, 1500, 20000]),
    "csf_blasts": yes_no,
    "csf_flow_positive": yes_no,
    "cranial_nerve_palsy": yes_no,
    "cns_imaging_positive": yes_no,
    "bm_blasts_pct": pick([0, 1, 4.9, 5, 20, 80]),
    "pb_blasts_pct": pick([0, 0.5, 3]),
    "extramedullary": yes_no,
    "bm_mrd_pct": pick([0, 0.00005, 0.0001, 0.005, 0.01, 0.5, 3]),
    "mrd_method": pick(["flow", "pcr", "ngs"]),
    "car_copies": pick([0, 20, 99, 100, 500, 10000, 200000]),
    "b_cells_pct": pick([0, 0.5, 0.99, 1, 5]),
    "time": times,
}
FREQUENT = ["temp_c", "temp_c", "temp_c", "hypotension", "sbp", "vasopressors", "o2_device", "o2_device",
            "antipyretics", "tocilizumab", "corticosteroids", "ice_score", "ice_items", "consciousness", "time"]
ROW_COLUMNS = pick([*ROW_VALUES, *FREQUENT])


@cache
@st.composite
def course_row(draw) -> dict[str, Any]:
    """One assessment: a few columns recorded (CRS, neuro, labs, CSF, marrow,
    kinetics, a clock time), the others blank; ICE as a total or as items."""
    row: dict[str, Any] = {}
    for _ in range(draw(ints(0, 7))):
        column = draw(ROW_COLUMNS)
        if column == "ice_items":
            row.pop("ice_score", None)
            row |= {k: draw(opt(ints(0, top))) for k, top in ICE_ITEMS.items()}
        elif not (column == "ice_score" and "ice_orientation" in row):
            row[column] = draw(ROW_VALUES[column])
    return row


def rows_on(days: tuple[int, ...], most: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    """1 to `most` rows on each of the days."""
    per_day = [st.lists(course_row().map(lambda r, n=n: {"day": n, **r}), min_size=1, max_size=most) for n in days]
    return st.tuples(*per_day).map(lambda groups: [r for g in groups for r in g])


@cache
@st.composite
def extended_course(draw):
    """(rows over days -3..25, rows on later days, age)."""
    days = draw(day_numbers(-3, 25, 8))
    before = draw(rows_on(tuple(days), 3))
    last = days[-1]
    later_days = draw(st.lists(st.integers(last + 1, last + 10), min_size=1, max_size=4, unique=True).map(sorted))
    later = draw(rows_on(tuple(later_days), 2))
    return before, later, draw(opt(ANY_AGE))


@BATCH
@given(courses=batch(extended_course(), 30))
def test_later_days_never_change_earlier_days(courses):
    problems = causal_violations(engine_for(), courses)
    assert not problems, "\n".join(problems[:5])


# ---------------------------------------------------------------------------
# Law 2: a day's findings split over rows grade as the one row

# Each finding lands on one row of the split, so this law tests how findings of
# different rows meet (row values reading several findings, combines over rows
# that lack them); how one finding recorded on several rows is combined (worst
# of) is the merge law of test_properties.
#
# findings that must stay on one row (a device with its flow and purpose; a
# pressure with its source; ICE as one total or as its five items)
FINDINGS: list[tuple[str, ...]] = [
    ("temp_c",),
    ("hypotension", "sbp"),
    ("vasopressors", "vasopressin"),
    ("o2_device", "o2_flow_lpm", "o2_not_for_hypoxia"),
    ("antipyretics",),
    ("tocilizumab",),
    ("corticosteroids",),
    ("other_anticytokine",),
    ("ice_score",),
    tuple(ICE_ITEMS),
    ("capd_score",),
    ("consciousness",),
    ("seizure",),
    ("motor_weakness",),
    ("cerebral_edema",),
    ("death_cause",),
]
# qualify the signs of their own row: copied onto every row of the split
ROW_QUALIFIERS = ("crs_other_cause", "icans_other_cause")
SPLIT_KEYS = ("crs_grade", "icans_grade")
SPLIT_SUMMARIES = ("crs_max_grade", "icans_max_grade")


def split_violations(engine: Engine, patients) -> list[str]:
    """Grade each course with its days as one row each (A<i>) and as their
    split rows (S<i>), in one CSV. patients: (days as (row, split rows), age)."""
    rows: list[dict[str, Any]] = []
    for i, (days, age) in enumerate(patients):
        rows += patient(f"A{i}", [one for one, _ in days], age)
        rows += patient(f"S{i}", [r for _, split in days for r in split], age)
    graded, summaries = grade(rows, engine)
    out = []
    for i, (days, age) in enumerate(patients):
        whole, split = graded[f"A{i}"], graded[f"S{i}"]
        assert [d["day"] for d in whole] == [d["day"] for d in split], (whole, split)
        for (one, parts), a, b in zip(days, whole, split):
            for key in SPLIT_KEYS:
                if a[key] != b[key]:
                    out.append(
                        f"age {age}, day {a['day']}: {key} {a[key]} from the row [{shown([one])}] but {b[key]} from "
                        f"its split [{' | '.join(shown([r]) for r in parts)}]\n  reasons: {a['reasons']} / {b['reasons']}"
                        f"\n  course: {shown([one for one, _ in days])}"
                    )
        for key in SPLIT_SUMMARIES:
            if summaries[f"A{i}"][key] != summaries[f"S{i}"][key]:
                out.append(f"age {age}: {key} {summaries[f'A{i}'][key]} from one row a day but "
                           f"{summaries[f'S{i}'][key]} split; course: {shown([one for one, _ in days])}")
    return out


def split_row(row: dict[str, Any], places: list[int], parts: int, clocks: list[str | None]) -> list[dict[str, Any]]:
    """The findings of `row` spread over `parts` rows (finding j on row places[j]),
    the row qualifiers on every row."""
    grouped = {c for f in FINDINGS for c in f}
    left = set(row) - grouped - set(ROW_QUALIFIERS) - {"day"}
    assert not left, f"no finding group for {left}"
    out = [{"day": row["day"], **{q: row.get(q) for q in ROW_QUALIFIERS}} for _ in range(parts)]
    for finding, place in zip(FINDINGS, places):
        for c in finding:
            if c in row:
                out[place][c] = row[c]
    for r, t in zip(out, clocks):
        if t is not None:
            r["time"] = t
    return out


@cache
@st.composite
def day_with_split(draw, n: int):
    row = {"day": n, **draw(any_day())}
    if "ice_orientation" in row and draw(BOOLS):  # incomplete items: an ICE range
        for k in ICE_ITEMS:
            if draw(BOOLS):
                row[k] = None
    parts = draw(ints(1, 3))
    places = [draw(ints(0, parts - 1)) for _ in FINDINGS]
    clocks = [draw(opt(times)) for _ in range(parts)]
    return row, split_row(row, places, parts, clocks)


@cache
@st.composite
def split_course(draw):
    days = draw(day_numbers(-3, 20, 6))
    return [draw(day_with_split(n)) for n in days], draw(opt(ANY_AGE))


@BATCH
@given(patients=batch(split_course(), 30))
def test_splitting_a_day_over_rows_never_changes_its_grade(patients):
    problems = split_violations(engine_for(), patients)
    assert not problems, "\n".join(problems[:5])


# ---------------------------------------------------------------------------
# The laws catch broken rules (mutants built from the built-in rule sets)


def mutant_rules(folder: Path, edits: dict[str, Callable[[str], str]]) -> Path:
    """The built-in rule files copied to `folder`, some of them edited."""
    folder.mkdir()
    for src in sorted(builtin_rules_dir().glob("*.yaml")):
        text = src.read_text(encoding="utf-8")
        if src.name in edits:
            edited = edits[src.name](text)
            assert edited != text, f"the mutant no longer changes {src.name}: update it"
            text = edited
        (folder / src.name).write_text(text, encoding="utf-8")
    return folder


def replacing(old: str, new: str) -> Callable[[str], str]:
    return lambda text: text.replace(old, new)


def without_looks_ahead(text: str) -> str:
    """A rule file without its looks_ahead declarations (and their folded lines)."""
    out, skip_deeper_than = [], None
    for line in text.splitlines(keepends=True):
        indent = len(line) - len(line.lstrip())
        if skip_deeper_than is not None and line.strip() and indent > skip_deeper_than:
            continue
        skip_deeper_than = None
        if line.lstrip().startswith("looks_ahead:"):
            skip_deeper_than = indent
            continue
        out.append(line)
    return "".join(out)


def causal_as_checked(monkeypatch, *names: str) -> None:
    """A causality check that misses some look-ahead functions."""
    for name in names:
        monkeypatch.setitem(FUNCTIONS, name, dataclasses.replace(FUNCTIONS[name], causal=True))


def test_causal_law_catches_a_treatment_that_waives_fever_before_it_is_given(tmp_path, monkeypatch):
    # a rule reading the whole course for treatment, missed by the causality check
    causal_as_checked(monkeypatch, "any")
    folder = mutant_rules(tmp_path / "rules", {"astct_crs.yaml": replacing(
        'treated_in_episode: "ever_since(episode and fever_waiving_treatment, episode_over)"',
        'treated_in_episode: "any(episode and fever_waiving_treatment)"',
    )})
    engine = load_engine([folder])
    assert "crs_grade" not in engine.plan.looks_ahead
    before = [{"day": 1, "temp_c": 39.0, "hypotension": "no", "o2_device": "none"},
              {"day": 2, "temp_c": 37.0, "hypotension": "yes", "o2_device": "none"}]
    later = [{"day": 3, "temp_c": 37.0, "hypotension": "yes", "tocilizumab": "yes"}]
    assert not causal_violations(engine_for(), [(before, later, 40)])
    problems = causal_violations(engine, [(before, later, 40)])
    assert any(p.startswith("day 2: crs_grade was 0, became 2") for p in problems), problems


def test_causal_law_catches_an_undeclared_nearest_blood_count(tmp_path, monkeypatch):
    # nearest() treated as reading this day only, so no rule has to declare it
    causal_as_checked(monkeypatch, "nearest", "nearest_day")
    folder = mutant_rules(tmp_path / "rules", dict.fromkeys(["cns_status.yaml", "bm_response.yaml"], without_looks_ahead))
    engine = load_engine([folder])
    assert not {"cns_status", "cns", "bm_response", "bm"} & set(engine.plan.looks_ahead)
    # a traumatic tap with blasts; the blood counts of the Steinherz/Bleyer test come the next day
    before = [{"day": 5, "csf_blasts": "yes", "csf_wbc": 40, "csf_rbc": 1500}]
    later = [{"day": 6, "wbc": 50.0, "rbc": 2.0}]
    assert not causal_violations(engine_for(), [(before, later, 9)])
    problems = causal_violations(engine, [(before, later, 9)])
    assert any("cns_substatus was 'CNS-3b', became 'CNS-2c'" in p for p in problems), problems


def test_causal_law_checks_every_key_the_plan_does_not_declare():
    # the built-in marrow response does read later days: undeclared, the law reports it
    engine = engine_for()
    assert {"bm_response", "bm"} <= set(engine.plan.looks_ahead)
    before = [{"day": 1, "temp_c": 39.0}, {"day": 28, "bm_blasts_pct": 1, "pb_blasts_pct": 0, "platelets": 150}]
    later = [{"day": 30, "anc": 2.0}]
    assert not causal_violations(engine, [(before, later, 30)])
    problems = causal_violations(engine, [(before, later, 30)], ahead=set(engine.plan.looks_ahead) - {"bm_response"})
    assert any(p.startswith("day 28: bm_response was 'CRi', became 'CR'") for p in problems), problems


def test_split_law_catches_crs_signs_counted_only_when_every_row_has_them(tmp_path):
    folder = mutant_rules(tmp_path / "rules", {"astct_crs.yaml": replacing(
        'value: "counted and crs_data"\n    combine: any', 'value: "counted and crs_data"\n    combine: all',
    )})
    engine = load_engine([folder])
    one = {"day": 1, "temp_c": 39.0, "consciousness": "normal"}
    patients = [([(one, [{"day": 1, "temp_c": 39.0}, {"day": 1, "consciousness": "normal"}])], 40)]
    assert not split_violations(engine_for(), patients)
    problems = split_violations(engine, patients)
    assert any("crs_grade 1 from the row" in p and "but 0 from its split" in p for p in problems), problems


def test_split_law_catches_neuro_findings_counted_only_when_every_row_has_them(tmp_path):
    folder = mutant_rules(tmp_path / "rules", {"astct_icans.yaml": replacing(
        'value: "counted and neuro_data"\n    combine: any', 'value: "counted and neuro_data"\n    combine: all',
    )})
    engine = load_engine([folder])
    one = {"day": 2, "ice_score": 5, "temp_c": 37.0, "icans_other_cause": "no"}
    split = [{"day": 2, "ice_score": 5, "icans_other_cause": "no"}, {"day": 2, "temp_c": 37.0, "icans_other_cause": "no"}]
    patients = [([(one, split)], 40)]
    assert not split_violations(engine_for(), patients)
    problems = split_violations(engine, patients)
    assert any("icans_grade 2 from the row" in p and "but 0 from its split" in p for p in problems), problems


# ---------------------------------------------------------------------------
# Law 3: the order of the rows handed to the engine changes nothing


def order_violations(engine: Engine, courses, seed: int) -> list[str]:
    """Grade the courses' rows in course order and mixed up (each day's rows
    in their order): every difference is a violation."""
    rows: list[dict[str, Any]] = []
    for i, (before, later, age) in enumerate(courses):
        rows += patient(f"P{i}", before + later, age)
    intake = read_text(rows_to_csv(rows), "laws.csv")
    assert not intake.problems, [str(p) for p in intake.problems]
    in_order = intake.rows
    shuffled = (
        in_order.with_columns(_key=pl.int_range(pl.len()).shuffle(seed))
        .with_columns(pl.col("_key").sort().over(COURSE, DAY))
        .sort("_key")
        .drop("_key")
    )
    expected, got = engine.assess(in_order, reasons=True), engine.assess(shuffled, reasons=True)
    if expected.equals(got):
        return []
    return [
        f"{column}: {a} in course order, {b} mixed up"
        for column in expected.columns
        for a, b in zip(expected[column].to_list(), got[column].to_list())
        if a != b
    ] or ["the results differ in shape"]


@BATCH
@given(courses=batch(extended_course(), 6), seed=st.integers(0, 2**32 - 1))
def test_the_order_of_rows_never_changes_a_result(courses, seed):
    problems = order_violations(engine_for(), courses, seed)
    assert not problems, "\n".join(problems[:5])
