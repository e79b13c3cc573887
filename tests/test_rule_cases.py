"""Every clinical case in tests/cases/*.yaml, run through the built-in rules."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import assess_rows

from carscore.report import day_rows, summary_rows

CASES_DIR = Path(__file__).parent / "cases"


def _load() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for i, case in enumerate(doc["cases"]):
            params.append(pytest.param(case, id=f"{path.stem}[{i}] {case['name']}"))
    return params


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return math.isclose(expected, actual, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return expected == actual


@pytest.mark.parametrize("case", _load())
def test_rule_case(case: dict[str, Any]) -> None:
    result = assess_rows(case["days"], case.get("parameters"))
    assert not result.intake.problems, [str(p) for p in result.intake.problems]
    courses = day_rows(result)
    assert len(courses) == 1
    days = next(iter(courses.values()))
    day_numbers = [d["day"] for d in days]
    checked = 0
    for key, expected in (case.get("expect") or {}).items():
        actual = [d[key] for d in days]
        assert len(expected) == len(actual), f"{key}: {len(expected)} expected values for days {day_numbers}"
        for day, e, a in zip(day_numbers, expected, actual):
            assert _same(e, a), f"day {day}: {key} expected {e!r}, got {a!r}; reasons {days[day_numbers.index(day)]['reasons']}"
            checked += 1
    for key, include in (("flags_include", True), ("flags_exclude", False)):
        for day, d, wanted in zip(day_numbers, days, case.get(key) or []):
            for flag in wanted or []:
                assert (flag in d["flags"]) == include, f"day {day}: flag {flag} {'missing' if include else 'present'}; flags {d['flags']}"
                checked += 1
    for reason_key, texts in (case.get("reason_contains") or {}).items():
        for day, d, text in zip(day_numbers, days, texts):
            if text is None:
                continue
            reason = d["reasons"].get(reason_key) or ""
            assert text.lower() in reason.lower(), f"day {day}: reason {reason_key} {reason!r} lacks {text!r}"
            checked += 1
    if case.get("summary"):
        summary = summary_rows(result)[0]
        for key, expected in case["summary"].items():
            assert key in summary, f"summary has no key {key}"
            assert _same(expected, summary[key]), f"summary {key}: expected {expected!r}, got {summary[key]!r}"
            checked += 1
    assert checked, "a case must check at least one value"
