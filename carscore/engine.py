"""The rules engine: rule sets compiled once into a plan (plan.py), then run
over the whole table of input rows in a single pass:

1. row values, computed on each row (one assessment) with its own qualifiers;
2. the rows of each day combined into one day (combine.py);
3. day values, decisions, flags and course summaries, in dependency order;
4. reasons worded, only for the days that have one.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import polars as pl

from carscore.batches import build_plan
from carscore.combine import combine_days, has_shared_days
from carscore.compile import COURSE, DAY, TIME
from carscore.contract import Contract, load_contract, with_inputs
from carscore.decisions import ReasonPass
from carscore.errors import RuleError, RuleErrors
from carscore.functions import captured_column
from carscore.includes import resolve_includes
from carscore.plan import Output, Plan, column_symbol
from carscore.ruleset import RuleSet

FILE = "_file"

__all__ = ["Engine", "Output", "Plan", "column_symbol"]


class Engine:
    """Compiled rule sets, ready to assess any table of input rows."""

    def __init__(
        self,
        rulesets: list[RuleSet],
        contract: Contract | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        *,
        plan_later: bool = False,
    ):
        """``plan_later``: the rule sets are compiled when the plan is first
        needed, or on a thread of their own from ``plan_in_background``;
        their errors are raised then."""
        # libraries are merged into the rule sets that include them, before the
        # overrides: a case or centre may change an included threshold per system
        self.rulesets = [self._override(rs, (overrides or {}).get(rs.id, {})) for rs in resolve_includes(rulesets)]
        # the input columns rule sets declare join the contract: intake then reads them
        self.contract = with_inputs(contract or load_contract(), _declared_inputs(self.rulesets, contract or load_contract()))
        unknown = set(overrides or {}) - {rs.id for rs in self.rulesets}
        if unknown:
            raise RuleErrors([RuleError(f"no rule set with id '{u}' to override") for u in sorted(unknown)])
        self._plan: Plan | None = None
        self._planning: threading.Thread | None = None
        self._plan_failure: BaseException | None = None
        self._plan_lock = threading.Lock()
        if not plan_later:
            self._plan = build_plan(self.rulesets, self.contract)

    def plan_in_background(self, explain: Callable[[RuleErrors], RuleErrors] | None = None) -> None:
        """Compile the rule sets on a thread of their own: a cohort's first
        chunks are read meanwhile (reading needs the contract, not the plan).
        ``explain``: what a RuleErrors of compiling becomes (load_engine's
        explanation of unknown names)."""

        def compile_plan() -> None:
            try:
                self._plan = build_plan(self.rulesets, self.contract)
            except RuleErrors as exc:
                self._plan_failure = explain(exc) if explain is not None else exc
            except BaseException as exc:  # noqa: BLE001 - raised where the plan is needed
                self._plan_failure = exc

        if self._plan is None and self._planning is None:
            self._planning = threading.Thread(target=compile_plan, name="carscore-compile", daemon=True)
            self._planning.start()

    @property
    def plan(self) -> Plan:
        """The compiled rule sets (waited for, or compiled now, the first time)."""
        if self._plan is None:
            with self._plan_lock:
                if self._planning is not None:
                    self._planning.join()
                elif self._plan is None:  # no thread: compiled here, its errors raised here
                    self._plan = build_plan(self.rulesets, self.contract)
            if self._plan_failure is not None:
                raise self._plan_failure
        assert self._plan is not None
        return self._plan

    @staticmethod
    def _override(rs: RuleSet, values: dict[str, Any]) -> RuleSet:
        if not values:
            return rs
        params = dict(rs.parameters)
        for name, value in values.items():
            if name not in params:
                raise RuleErrors([RuleError(f"rule set '{rs.id}' has no parameter '{name}'", rs.file)])
            if isinstance(value, float) and not math.isfinite(value) or isinstance(value, int) and abs(value) >= 2**63:
                raise RuleErrors([RuleError(f"parameter '{name}' of rule set '{rs.id}' must be a finite number", rs.file)])
            params[name] = replace(params[name], value=value)
        return replace(rs, parameters=params)

    # -- running --

    def assess(self, rows: pl.DataFrame, reasons: bool = True, file_columns: list[frozenset[str]] | None = None) -> pl.DataFrame:
        """Grade a table of input rows (one row per assessment, several per day
        allowed): one row per course and day comes back, with every output,
        flag and summary column. Unless ``reasons`` is false, also each day's
        reasons and its list of flags: the day-level detail that course
        summaries do not need. ``file_columns`` gives, for each input file (by
        its _file index), the columns it has, for ``captured()``."""
        lf = self._graded(rows, file_columns)
        for batch in self.plan.word_batches if reasons else []:
            lf = lf.with_columns(batch)
        if reasons:
            # the day's flag ids, written out and split: a list built of ten nullable
            # literals per row (concat_list) costs fifteen times more
            fired = pl.concat_str(
                [pl.when(pl.col(f"_flag_{f}")).then(pl.lit(f"{f};")).otherwise(pl.lit("")) for f in self.plan.flags]
            )
            none = pl.lit([], dtype=pl.List(pl.String))
            flag_list = (
                pl.when(fired == "").then(none).otherwise(fired.str.strip_suffix(";").str.split(";")) if self.plan.flags else none
            )
            lf = lf.with_columns(flag_list.alias("flags"))
        out = lf.collect(engine="in-memory")
        if reasons:
            out = self.word_reasons(out)
        # intermediate values served the grading; keep inputs and results only
        return out.drop([c for c in out.columns if c.startswith(("_row_", "_let_", "_flag_", "_case_", "_captured_"))])

    def summarise(self, rows: pl.DataFrame, file_columns: list[frozenset[str]] | None = None) -> pl.DataFrame:
        """Each course's summary (``_course`` and the summary keys, one row per
        course): what assess() gives on a course's first day, computing only
        the values summaries read (a tenth less work than every day's outputs)."""
        keys = self.plan.summary_keys
        summaries = self._graded(rows, file_columns).select(COURSE, *keys).collect(engine="in-memory")
        return summaries.filter(pl.col(COURSE).is_first_distinct())

    def _graded(self, rows: pl.DataFrame, file_columns: list[frozenset[str]] | None) -> pl.LazyFrame:
        """The plan of grading over rows put in course order: row values, the
        rows of each day combined, then day values, decisions, flags and summaries."""
        order = [COURSE, DAY] + ([TIME] if TIME in rows.columns else [])
        if not in_course_order(rows, order):
            rows = rows.sort(order, nulls_last=False, maintain_order=True)
        if rows[COURSE].null_count() == 0:
            # the rows are in course order: saying so lets polars cut each course's
            # window as a slice instead of hashing the course of every row (an eighth of grading)
            rows = rows.with_columns(pl.col(COURSE).set_sorted())
        shared = has_shared_days(rows)
        lf = rows.lazy()
        for batch in self.plan.row_batches:
            lf = lf.with_columns(batch)
        if shared:
            lf = combine_days(lf, self.contract, self.plan.row_combines, list(rows.columns))
        if self.plan.captured:
            files = file_columns or []
            lf = lf.with_columns(
                pl.col(FILE).is_in([i for i, cols in enumerate(files) if name in cols]).alias(captured_column(name))
                for name in sorted(self.plan.captured)
            )
        for batch in self.plan.batches:
            lf = lf.with_columns(batch)
        return lf

    def word_reasons(self, graded: pl.DataFrame) -> pl.DataFrame:
        """Each day's reasons, worded case by case on the days of that case
        only, with the words they read that need no other day (plan.deferred_words)."""
        indexed = graded.lazy().with_row_index("_row")
        timeline_values = [e for rp in self.plan.reasons for e in rp.timeline_values]
        if timeline_values:
            indexed = indexed.with_columns(timeline_values)
        queries, owners = [], []
        for k, rp, case, text, words, reads in self._wordings:
            query = indexed.select("_row", *reads).filter(pl.col(rp.case_column) == case)
            for word in words:
                query = query.with_columns(word)
            queries.append(query.select("_row", text.alias("_text")))
            owners.append(k)
        # the reasons are worded side by side (polars' own choice of engine: faster than in-memory here)
        worded = pl.collect_all(queries)
        columns = []
        for k, rp in enumerate(self.plan.reasons):
            full = pl.repeat(None, graded.height, dtype=pl.String, eager=True).alias(f"_reason_{rp.key}")
            parts = [part for owner, part in zip(owners, worded) if owner == k and part.height]
            if parts:
                texts = pl.concat(parts)
                full = full.scatter(texts["_row"], texts["_text"])
            columns.append(full)
        return graded.with_columns(columns) if columns else graded

    @functools.cached_property
    def _wordings(self) -> list[tuple[int, ReasonPass, int, pl.Expr, list[pl.Expr], list[str]]]:
        """Per reason and case: its text, the deferred words it reads (in
        dependency order) and the graded columns it reads."""
        wordings = []
        for k, rp in enumerate(self.plan.reasons):
            for case, text in rp.texts:
                needed, words = set(text.meta.root_names()), []
                for word in reversed(self.plan.deferred_words):
                    if word.meta.output_name() in needed:
                        words.insert(0, word)
                        needed |= set(word.meta.root_names())
                reads = sorted((needed - {w.meta.output_name() for w in words}) | {rp.case_column})
                wordings.append((k, rp, case, text, words, reads))
        return wordings


def _declared_inputs(rulesets: list[RuleSet], base: Contract) -> dict[str, tuple[str, Any]]:
    """Every rule set's ``inputs``; a column is declared once (by one rule set,
    or identically), and never redefines a contract column."""
    declared: dict[str, tuple[str, Any]] = {}
    errors = []
    for rs in rulesets:
        for name, column in rs.inputs.items():
            line, col = rs.input_positions.get(name, (0, 0))
            if name in base.columns:
                errors.append(RuleError(f"input column '{name}' is already a contract column", rs.file, line, col))
            elif name in declared and declared[name][1] != column:
                errors.append(
                    RuleError(
                        f"input column '{name}' is declared differently by rule set '{declared[name][0]}'", rs.file, line, col
                    )
                )
            else:
                declared.setdefault(name, (rs.id, column))
    if errors:
        raise RuleErrors(errors)
    return declared


def in_course_order(rows: pl.DataFrame, order: list[str]) -> bool:
    """Whether rows are already in course, day (and time) order, as
    ``sort(order, nulls_last=False)`` would put them: sorting costs a second of
    a million rows, and files are nearly always written in that order."""
    if rows.height < 2:
        return True
    course, day = pl.col(COURSE), pl.col(DAY)
    back = (course.diff() < 0) | ((course.diff() == 0) & (day.diff() < 0))
    if TIME in order:
        same_day = (course.diff() == 0) & (day.diff() == 0)
        time, before = pl.col(TIME), pl.col(TIME).shift(1)
        # a blank time sorts first: one after a written time is out of order
        earlier = (time < before) | (time.is_null() & before.is_not_null())
        back = back | (same_day & earlier.fill_null(False))
    return not rows.select(back.fill_null(False).any()).item()
