"""Rule cases: short clinical courses with the grades the criteria give them,
kept as data beside the rule files they test (the format is in
tests/cases/README.md). One runner serves the project's own test suite and
``carscore rules test`` for a centre's rule sets.

A case file may name the rule files it tests (``rules: [...]``, relative to
the case file); they are added to the built-in rule sets, replacing those of
the same id, as ``--rules`` does.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carscore.errors import RuleError, RuleErrors
from carscore.rulefile import load_yaml_file
from carscore.yamlsafe import LDict, LList


@dataclass
class Case:
    name: str
    file: str
    index: int
    spec: dict[str, Any]


@dataclass
class CaseFile:
    path: Path
    rules: list[Path]
    cases: list[Case]
    systems: list[str] | None = None  # graded beside ASTCT; None: those of the file's own rule files


@dataclass
class Outcome:
    case: Case
    failures: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def passed(self) -> bool:
        return not self.failures and self.checked > 0


def read_case_file(path: Path) -> CaseFile:
    file = str(path)
    doc, _ = load_yaml_file(path, "case file")
    if not isinstance(doc, LDict) or not isinstance(doc.get("cases"), LList):
        raise RuleErrors(
            [RuleError("a case file is a mapping with 'cases' (a list) and optionally 'rules' and 'systems'", file, 1, 1)]
        )
    rules = doc.get("rules") or []
    if isinstance(rules, str):
        rules = [rules]
    systems = doc.get("systems")
    if isinstance(systems, str):
        systems = [systems]
    if systems is not None and not (isinstance(systems, list) and all(isinstance(x, str) for x in systems)):
        raise RuleErrors(
            [RuleError("'systems' is a list of grading system ids (e.g. [lee2014, penn])", file, getattr(doc, "line", 1), 1)]
        )
    cases = []
    for i, spec in enumerate(doc["cases"]):
        if not isinstance(spec, LDict) or "name" not in spec or "days" not in spec:
            raise RuleErrors([RuleError("each case needs a 'name' and its 'days'", file, getattr(spec, "line", 1), 1)])
        cases.append(Case(str(spec["name"]), file, i, _plain(spec)))
    return CaseFile(
        path, [(path.parent / str(r)) for r in rules], cases, [str(x) for x in systems] if systems is not None else None
    )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def cell(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def rows_to_csv(rows: list[dict[str, Any]], patient_id: str = "CASE") -> str:
    """A case's rows as a patient CSV: columns in order of first use."""
    columns: list[str] = ["patient_id"]
    for r in rows:
        for k in r:
            if k not in columns:
                columns.append(k)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([patient_id if c == "patient_id" and "patient_id" not in r else cell(r.get(c)) for c in columns])
    return out.getvalue()


def same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return math.isclose(expected, actual, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return expected == actual


def run_case(case: Case, engine: Any) -> Outcome:
    """Grade one case with a compiled engine and compare with its expectations."""
    from carscore.assess import assess_intake
    from carscore.intake import read_text
    from carscore.report import day_rows, summary_rows

    spec = case.spec
    outcome = Outcome(case)
    result = assess_intake(read_text(rows_to_csv(spec["days"]), "case.csv", engine.contract), engine)
    if result.intake.problems:
        outcome.failures.append("input problems: " + "; ".join(str(p) for p in result.intake.problems))
        return outcome
    courses = day_rows(result)
    if len(courses) != 1:
        outcome.failures.append(f"expected one course, got {len(courses)}")
        return outcome
    days = next(iter(courses.values()))
    numbers = [d["day"] for d in days]
    for key, expected in (spec.get("expect") or {}).items():
        actual = [d.get(key) for d in days]
        if len(expected) != len(actual):
            outcome.failures.append(f"{key}: {len(expected)} values expected for the days {numbers}")
            continue
        for day, d, e, a in zip(numbers, days, expected, actual):
            outcome.checked += 1
            if not same(e, a):
                outcome.failures.append(f"day {day}: {key} expected {e!r}, got {a!r}; reasons {d['reasons']}")
    for key, include in (("flags_include", True), ("flags_exclude", False)):
        for day, d, wanted in zip(numbers, days, spec.get(key) or []):
            for flag in wanted or []:
                outcome.checked += 1
                if (flag in d["flags"]) != include:
                    state = "missing" if include else "present"
                    outcome.failures.append(f"day {day}: flag {flag} {state}; flags {d['flags']}")
    for reason_key, texts in (spec.get("reason_contains") or {}).items():
        for day, d, text in zip(numbers, days, texts):
            if text is None:
                continue
            outcome.checked += 1
            reason = d["reasons"].get(reason_key) or ""
            if text.lower() not in reason.lower():
                outcome.failures.append(f"day {day}: reason {reason_key} {reason!r} lacks {text!r}")
    if spec.get("summary"):
        summary = summary_rows(result)[0]
        for key, expected in spec["summary"].items():
            outcome.checked += 1
            if key not in summary:
                outcome.failures.append(f"the summary has no key {key}")
            elif not same(expected, summary[key]):
                outcome.failures.append(f"summary {key}: expected {expected!r}, got {summary[key]!r}")
    if not outcome.checked and not outcome.failures:
        outcome.failures.append("the case checks nothing: give expect, flags, reasons or summary")
    return outcome


def engine_for(rules: list[Path], overrides: dict[str, dict[str, Any]] | None = None, systems: list[str] | None = None) -> Any:
    from carscore.assess import load_engine

    return load_engine(list(rules) or None, overrides=overrides or None, systems=systems)


def _systems_of(rules: list[Path]) -> list[str]:
    """The grading systems the given rule files belong to (graded without being named)."""
    from carscore.ruleset import read_rules

    return sorted({rs.system for rs in read_rules(rules) if rs.system}) if rules else []


def case_systems(case_file: CaseFile, rules: list[Path]) -> list[str]:
    """The systems a case file grades beside ASTCT: those it names, else those of its rule files."""
    return case_file.systems if case_file.systems is not None else _systems_of(rules)


def run_case_file(case_file: CaseFile, extra_rules: list[Path] | None = None) -> list[Outcome]:
    """Every case of a file, graded with the built-in rules plus the file's own
    rule files and ``extra_rules``; cases with parameter overrides get their own engine."""
    rules = [*case_file.rules, *(extra_rules or [])]
    systems = case_systems(case_file, rules)
    shared = engine_for(rules, systems=systems)
    outcomes = []
    for case in case_file.cases:
        overrides = case.spec.get("parameters")
        engine = engine_for(rules, overrides, systems) if overrides else shared
        outcomes.append(run_case(case, engine))
    return outcomes
