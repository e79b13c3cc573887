"""Compiling a decision: cases tried in order, or a worst-of table of
criteria, into one output expression per output and the reason texts."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from carscore.compile import ANY, BOOL, NUM, TEXT, Compiled, CompileError, Compiler, Symbol, reads_timeline
from carscore.errors import RuleError
from carscore.functions import format_value
from carscore.rulefile import Expression, Source, Template
from carscore.ruleset import Decision


@dataclass(frozen=True)
class ReasonPass:
    """How to word one decision's reasons: computed after grading, and only on
    the rows whose chosen case has a reason (most CSF and marrow days have
    none), so that wording never slows down grading."""

    key: str
    case_column: str
    # each case that has a reason, with its text: worded on that case's days
    # only (one when/then over every case would word every case on every day)
    texts: tuple[tuple[int, pl.Expr], ...]
    # values read along the timeline (nearest_day(...), ...): computed on every
    # row before the rows to word are picked out
    timeline_values: tuple[pl.Expr, ...] = ()


@dataclass(frozen=True)
class CompiledDecision:
    exprs: list[pl.Expr]
    types: dict[str, str]
    level: str
    causal: bool
    looks_ahead_via: str
    reason: ReasonPass | None


def pos(src: Source | None) -> tuple[str, int, int]:
    return (src.file, src.line, src.col) if src else ("", 0, 0)


def _at(expr: Expression, message: str) -> CompileError:
    return CompileError(message, 0, expr.source)


def _compile_in(c: Compiler, expr: Expression) -> Compiled:
    try:
        return c.compile(expr.node)
    except CompileError as exc:
        raise exc.located(expr.source) from None


_TIMELINE_VALUE_NUMBER = itertools.count()


class _Parts:
    """What a decision's pieces read: for the causality check."""

    def __init__(self) -> None:
        self.causal = True
        self.via = ""

    def saw(self, c: Compiled) -> Compiled:
        if not c.causal and self.causal:
            self.causal, self.via = False, c.looks_ahead_via
        return c


def _template(c: Compiler, t: Template | None, parts: _Parts, timeline_values: list[pl.Expr] | None = None) -> pl.Expr | None:
    if t is None:
        return None
    pieces: list[pl.Expr] = []
    for literal, node, offset in t.parts:
        if node is None:
            pieces.append(pl.lit(literal))
            continue
        try:
            value = parts.saw(c.compile(node))
            if timeline_values is not None and reads_timeline(node):
                name = f"_timeline_value_{next(_TIMELINE_VALUE_NUMBER)}"
                timeline_values.append(value.expr.alias(name))
                value = replace(value, expr=pl.col(name))
            pieces.append(format_value(value))
        except CompileError as exc:
            raise CompileError(exc.message, offset + exc.offset, t.source) from None
    return pl.concat_str(pieces) if pieces else pl.lit("")


def _value_type(values: list[Any]) -> tuple[str, pl.DataType | None]:
    present = [v for v in values if v is not None]
    if not present:
        return ANY, None
    if all(isinstance(v, bool) for v in present):
        return BOOL, pl.Boolean()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return NUM, pl.Int64()
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return NUM, pl.Float64()
    if all(isinstance(v, str) for v in present):
        return TEXT, pl.String()
    return ANY, None


def compile_decision(dec: Decision, c: Compiler, symbols: dict[str, Symbol]) -> CompiledDecision:
    levels: set[str] = set()
    parts = _Parts()
    chains: dict[str, Any] = {o: None for o in dec.outputs}
    case_chain: Any = None
    texts: list[tuple[int, pl.Expr]] = []
    timeline_values: list[pl.Expr] = []
    values_seen: dict[str, list[Any]] = {o: [] for o in dec.outputs}

    def add(chain: Any, cond: pl.Expr, value: pl.Expr) -> Any:
        return pl.when(cond).then(value) if chain is None else chain.when(cond).then(value)

    def condition(expr: Expression) -> pl.Expr:
        compiled = parts.saw(_compile_in(c, expr))
        if compiled.type not in (BOOL, ANY):
            raise _at(expr, "'when' must be a condition (true or false)")
        levels.add(compiled.level)
        return compiled.expr.fill_null(False)

    for case_index, case in enumerate(dec.cases):
        cond = condition(case.when) if case.when is not None else pl.lit(True)
        case_reason = _template(c, case.reason, parts, timeline_values)
        if case.worst:
            output = dec.outputs[0]
            crit_conds, crit_reasons = [], []
            for crit in sorted(case.worst, key=lambda k: -k.value):
                held = condition(crit.when)
                crit_conds.append((held, crit.value))
                text = _template(c, crit.reason, parts, timeline_values)
                text = pl.lit("criterion met") if text is None else text
                crit_reasons.append(pl.when(held).then(pl.concat_str([text, pl.lit(f" → grade {crit.value}")])))
                values_seen[output].append(crit.value)
            met = pl.any_horizontal([h for h, _ in crit_conds])
            cond = cond & met
            value = pl.max_horizontal([pl.when(h).then(pl.lit(v)) for h, v in crit_conds])
            chains[output] = add(chains[output], cond, value)
            pieces = ([case_reason] if case_reason is not None else []) + crit_reasons
            reason = pl.concat_str(pieces, separator="; ", ignore_nulls=True)
        else:
            for o in dec.outputs:
                v = case.then.get(o)
                values_seen[o].append(v)
                chains[o] = add(chains[o], cond, pl.lit(v))
            reason = case_reason if case_reason is not None else pl.lit(None, dtype=pl.String)
        case_chain = add(case_chain, cond, pl.lit(case_index, dtype=pl.Int16))
        if case.reason is not None or case.worst:
            texts.append((case_index, reason))

    level = "day" if "day" in levels or not levels else "course"
    exprs: list[pl.Expr] = []
    types: dict[str, str] = {}
    for o in dec.outputs:
        t, dtype = _value_type(values_seen[o])
        if t == ANY and any(v is not None for v in values_seen[o]):
            raise RuleError(f"the values given for '{o}' mix numbers, words and true/false", *pos(dec.source))
        expr = chains[o].otherwise(None)
        if dtype is not None:
            expr = expr.cast(dtype)
        exprs.append(expr.alias(o))
        types[o] = t
        # a result declared to look ahead is what later rules read: they inherit it
        symbols[o] = Symbol(pl.col(o), t, level, causal=parts.causal, looks_ahead_via=parts.via and o)
    reason_pass = None
    if dec.reason_key:
        case_column = f"_case_{dec.reason_key}"
        exprs.append(case_chain.otherwise(None).alias(case_column))
        if texts:
            if dec.note_missing:
                decided = pl.col(dec.outputs[0]).is_not_null() if dec.outputs else pl.lit(True)
                texts = [(case, _with_missing_note(text, dec, decided=decided)) for case, text in texts]
            reason_pass = ReasonPass(dec.reason_key, case_column, tuple(texts), tuple(timeline_values))
    return CompiledDecision(exprs, types, level, parts.causal, parts.via, reason_pass)


def _with_missing_note(reason: pl.Expr, dec: Decision, decided: pl.Expr) -> pl.Expr:
    """Name the columns a graded day lacked ("grade what is recorded and name
    what is missing")."""
    labels = []
    for group in dec.note_missing:
        all_blank = pl.all_horizontal([pl.col(name).is_null() for name in group])
        labels.append(pl.when(all_blank).then(pl.lit(" or ".join(group))))
    missing = pl.concat_str(labels, separator=", ", ignore_nulls=True)
    return (
        pl.when(decided & (missing.str.len_chars() > 0))
        .then(pl.concat_str([reason, pl.lit("; not recorded: "), missing]))
        .otherwise(reason)
    )
