"""One call from files to results: read, grade with the compiled rule sets,
and keep each course's summary beside its days."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from carscore.compile import COURSE
from carscore.engine import Engine
from carscore.intake import Intake, read_paths
from carscore.ruleset import RuleSet, builtin_rules_dir, read_rules


@dataclass
class Assessment:
    engine: Engine
    intake: Intake
    days: pl.DataFrame  # every patient-day with outputs, reasons and flags
    summaries: pl.DataFrame  # one row per assessed course: _course + summary keys

    @property
    def rulesets(self) -> list[RuleSet]:
        return self.engine.rulesets


def load_engine(rules: list[str | Path] | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> Engine:
    """Compile the rule sets in the given files/folders (default: the built-in rules)."""
    paths = [Path(p) for p in rules] if rules else [builtin_rules_dir()]
    return Engine(read_rules(paths), overrides=overrides)


def assess_intake(intake: Intake, engine: Engine, reasons: bool = True) -> Assessment:
    """Grade every course; ``reasons=False`` skips wording the reasons (for
    summaries and cohort statistics, which do not show them)."""
    days = engine.assess(intake.rows, reasons=reasons, file_columns=intake.file_columns)
    keys = engine.plan.summary_keys
    first_rows = days.filter(pl.col(COURSE).is_first_distinct())
    summaries = first_rows.select([COURSE, *keys])
    return Assessment(engine, intake, days, summaries)


def assess_paths(paths: list[str], engine: Engine, stdin: bytes | None = None) -> Assessment:
    return assess_intake(read_paths(paths, engine.contract, stdin), engine)
