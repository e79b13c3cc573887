"""Every clinical case in tests/cases/*.yaml, through the same runner as
`carscore rules test` (carscore.casefile)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from carscore.casefile import Case, case_systems, engine_for, read_case_file, run_case

CASES_DIR = Path(__file__).parent / "cases"


def _cases() -> list:
    params = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        case_file = read_case_file(path)
        rules = tuple(str(r) for r in case_file.rules)
        systems = tuple(case_systems(case_file, list(case_file.rules)))
        for case in case_file.cases:
            params.append(pytest.param(case, rules, systems, id=f"{path.stem}[{case.index}] {case.name}"))
    return params


@lru_cache(maxsize=64)
def _engine(rules: tuple[str, ...], overrides: tuple, systems: tuple[str, ...]):  # type: ignore[no-untyped-def]
    return engine_for([Path(r) for r in rules], {rs: dict(p) for rs, p in overrides}, list(systems))


@pytest.mark.parametrize("case, rules, systems", _cases())
def test_rule_case(case: Case, rules: tuple[str, ...], systems: tuple[str, ...]) -> None:
    overrides = case.spec.get("parameters") or {}
    key = tuple(sorted((rs, tuple(sorted(p.items()))) for rs, p in overrides.items()))
    outcome = run_case(case, _engine(rules, key, systems))
    assert outcome.passed, "\n".join(outcome.failures)
