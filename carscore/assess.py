"""One call from files to results: read, grade with the compiled rule sets,
and keep each course's summary beside its days."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from carscore.compile import COURSE
from carscore.engine import Engine
from carscore.errors import RuleError, RuleErrors, UsageError
from carscore.intake import Intake, read_paths
from carscore.ruleset import RuleSet


@dataclass
class Assessment:
    engine: Engine
    intake: Intake
    days: pl.DataFrame  # every patient-day with outputs, reasons and flags
    summaries: pl.DataFrame  # one row per assessed course: _course + summary keys
    summary_cache: list[dict[str, Any]] | None = None  # report.summary_rows, built once

    @property
    def rulesets(self) -> list[RuleSet]:
        return self.engine.rulesets


def load_engine(
    rules: list[str | Path] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    builtins: bool = True,
    systems: list[str] | None = None,
    plan_later: bool = False,
) -> Engine:
    """Compile the built-in rule sets together with the rule files/folders given.

    A given rule set with the id of a built-in one replaces it; the others are
    added. ``builtins=False`` uses the given files alone. Where each rule set
    comes from (path, SHA-256, built-in or not, parameters changed from the
    built-in) is kept with the engine: ``rulesources.sources_of(engine)``.
    A name that no rule set in use defines is a RuleErrors naming the rule
    set that would define it. ``systems`` selects the grading systems graded
    beside ASTCT (contract §5; ``["all"]`` for every one). ``plan_later``:
    the rule sets are compiled on a thread of their own while the caller goes
    on (reading input); their errors are raised where the plan is first needed."""
    from carscore import rulesources

    # the built-in rule files are read only when they are used (or a problem needs them)
    wanted = None if systems and "all" in systems else {REFERENCE_SYSTEM, *(systems or [])}
    builtin = rulesources.builtin_rulesets(wanted) if builtins else []
    known = rulesources.builtin_systems() if builtins else set()
    rulesets = select_systems(rulesources.combine(rules, builtin, with_builtins=builtins), systems, known)
    if not rulesets:
        raise RuleErrors([RuleError("no rule sets to use: give rule files with --rules")])

    def explained(exc: RuleErrors) -> RuleErrors:
        return rulesources.explain_unknown_names(exc, rulesets, rulesources.builtin_rulesets())

    try:
        engine = Engine(rulesets, overrides=overrides, plan_later=plan_later)
    except RuleErrors as exc:
        raise explained(exc) from None
    if plan_later:
        engine.plan_in_background(explained)
    if builtins:
        rulesources.remember(engine, rulesources.describe(engine.rulesets, builtin))
    return engine


REFERENCE_SYSTEM = "astct"


def select_systems(rulesets: list[RuleSet], systems: list[str] | None, also_known: set[str] | None = None) -> list[RuleSet]:
    """The rule sets to grade with: every rule set that belongs to no system, the
    reference system (ASTCT, always), and the systems asked for (``also_known``:
    built-in systems whose files were not read)."""
    known = sorted({rs.system for rs in rulesets if rs.system} | (also_known or set()))
    wanted = set(systems or [])
    if "all" in wanted:
        wanted = set(known)
    unknown = sorted(wanted - set(known))
    if unknown:
        raise UsageError(f"no grading system {', '.join(repr(u) for u in unknown)}; known: {', '.join(known) or 'none'} (or all)")
    wanted.add(REFERENCE_SYSTEM)
    chosen = [rs for rs in rulesets if not rs.system or rs.system in wanted]  # libraries (no system) stay for includes
    # the reference and the rule sets of no system first: tables and documents show them first
    return sorted(chosen, key=lambda rs: rs.system not in ("", REFERENCE_SYSTEM))


def assess_intake(intake: Intake, engine: Engine, reasons: bool = True) -> Assessment:
    """Grade every course; ``reasons=False`` skips wording the reasons (for
    summaries and cohort statistics, which do not show them)."""
    days = engine.assess(intake.rows, reasons=reasons, file_columns=intake.file_columns)
    keys = engine.plan.summary_keys
    first_rows = days.filter(pl.col(COURSE).is_first_distinct())
    summaries = first_rows.select([COURSE, *keys])
    return Assessment(engine, intake, days, summaries)


def summarise_intake(intake: Intake, engine: Engine) -> Assessment:
    """Every course's summary only (its days not kept): what a cohort's
    statistics read, graded with the least work."""
    summaries = engine.summarise(intake.rows, intake.file_columns)
    return Assessment(engine, intake, pl.DataFrame(schema={COURSE: pl.UInt32}), summaries)


def assess_paths(paths: list[str], engine: Engine, stdin: bytes | None = None) -> Assessment:
    return assess_intake(read_paths(paths, engine.contract, stdin), engine)
