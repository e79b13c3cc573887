"""From planned definitions to the compiled plan: each definition compiled in
dependency order into column batches (the row stage first, then the days),
values computed once where two definitions compute the same, and let values
that only reasons read kept for the reason pass."""

from __future__ import annotations

from typing import Any

import polars as pl

from carscore.combine import RowCombine
from carscore.compile import ANY, BOOL, NUM, CompileError, Compiler, Symbol, reads_timeline
from carscore.contract import Contract
from carscore.decisions import compile_decision, pos
from carscore.errors import RuleError, RuleErrors
from carscore.plan import (
    MAX_DEFINITION_DEPTH,
    Definition,
    Output,
    Plan,
    Planner,
    decision_refs,
    row_column,
    topological,
)
from carscore.ruleset import Decision, RuleSet


def build_plan(rulesets: list[RuleSet], contract: Contract) -> Plan:
    planner = Planner(rulesets, contract)
    planner.gather()
    return _compile(planner)


def _locate(d: Definition, exc: CompileError) -> RuleError:
    """Map an error inside one of a definition's expressions to its file position."""
    src = exc.source or d.source
    return src.error(exc.message, exc.offset)


def _names_defined(d: Definition) -> list[str]:
    if d.kind in ("row", "let"):
        return [f"{d.kind}:{d.ruleset.id}:{d.name}"]
    if d.kind == "decision":
        return list(d.payload.outputs)
    return [d.name]


def _graded_lets(p: Planner) -> set[str]:
    """The let values that grading reads (conditions, outputs, flags, summaries),
    directly or through other lets; the others serve reasons only."""

    def lets_read(d: Definition, refs: set[str]) -> list[str]:
        keys = []
        for ref in refs:
            owner, dot, name = ref.partition(".")
            key = f"let:{owner}:{name}" if dot else f"let:{d.ruleset.id}:{ref}"
            if key in p.defs:
                keys.append(key)
        return keys

    stack: list[str] = []
    for d in p.defs.values():
        if d.kind == "let":
            continue
        if d.kind == "decision":
            refs = decision_refs(d.payload, words=False)
        elif d.kind == "summary" and d.payload.decision is not None:
            refs = decision_refs(d.payload.decision, words=False)
        else:
            refs = d.refs
        stack += lets_read(d, refs)
    graded: set[str] = set()
    while stack:
        key = stack.pop()
        if key not in graded:
            graded.add(key)
            stack += lets_read(p.defs[key], p.defs[key].refs)
    return graded


def _compile(p: Planner) -> Plan:
    plan = Plan([], [], [], [], [], [], [])
    row_batches: dict[int, list[pl.Expr]] = {}
    batches: dict[int, list[pl.Expr]] = {}
    depth: dict[str, int] = {}
    rows = {k: d for k, d in p.defs.items() if d.kind == "row"}
    days = {k: d for k, d in p.defs.items() if d.kind != "row"}
    graded = p.graded = _graded_lets(p)
    word_batches: dict[int, list[pl.Expr]] = {}
    same_day_words: list[tuple[int, pl.Expr]] = []
    # the row stage runs first: every day definition may read the row values
    for key in topological(rows) + topological(days):
        d = p.defs[key]
        level = 1 + max((depth[dep] for dep in d.deps), default=0)
        depth[key] = level
        if level > MAX_DEFINITION_DEPTH:
            raise RuleErrors(
                [
                    d.source.error(
                        f"'{d.name}' is built on a chain of more than {MAX_DEFINITION_DEPTH} definitions, each using the next"
                    )
                ]
            )
        compiler = p.compiler(d)
        try:
            produced = _compile_definition(p, d, compiler, plan)
        except (CompileError, RuleError) as exc:
            p.errors.append(_locate(d, exc) if isinstance(exc, CompileError) else exc)
            # stand-ins, so that what uses a broken definition is not reported again
            for name in _names_defined(d):
                p.symbols.setdefault(name, Symbol(pl.lit(None), ANY, "day"))
            if d.kind == "row":
                p.symbols.setdefault(f"day:{d.ruleset.id}:{d.name}", Symbol(pl.lit(None), ANY, "day"))
            continue
        p.captured |= compiler.captured
        # let values only reasons read (their words, the day a value came from) are
        # computed only when reasons are wanted
        words_only = d.kind == "let" and key not in graded
        if words_only and not reads_timeline(d.payload.node):
            same_day_words += [(level, e) for e in produced]
            continue
        target = row_batches if d.kind == "row" else word_batches if words_only else batches
        target.setdefault(level, []).extend(produced)
    if p.errors:
        raise RuleErrors(p.errors)
    plan.row_batches = [row_batches[k] for k in sorted(row_batches)]
    plan.batches = [batches[k] for k in sorted(batches)]
    plan.deferred_words = _defer_same_day_words(same_day_words, word_batches, plan)
    plan.word_batches = [word_batches[k] for k in sorted(word_batches)]
    plan.captured = p.captured
    return plan


def _defer_same_day_words(
    same_day: list[tuple[int, pl.Expr]], word_batches: dict[int, list[pl.Expr]], plan: Plan
) -> list[pl.Expr]:
    """Words that read their own day only are worded with the reason, on the
    days that carry it (most wording serves a few days: IEC-HS is worded on a
    tenth of them). Those that a word reading along the timeline needs, directly
    or not, must be on every day: they join the word batches. The rest, in
    dependency order."""
    read_on_every_day = {n for batch in word_batches.values() for e in batch for n in e.meta.root_names()}
    read_on_every_day |= {n for rp in plan.reasons for e in rp.timeline_values for n in e.meta.root_names()}
    on_every_day: set[int] = set()
    # the last first: a word is read only by words defined after it
    for k in reversed(range(len(same_day))):
        level, expr = same_day[k]
        if expr.meta.output_name() in read_on_every_day:
            on_every_day.add(k)
            word_batches.setdefault(level, []).append(expr)
            read_on_every_day |= set(expr.meta.root_names())
    return [expr for k, (_level, expr) in enumerate(same_day) if k not in on_every_day]


def _check_causal(d: Definition, causal: bool, via: str, declared: str, names: list[str], plan: Plan) -> None:
    """Criteria §0: no day's result may depend on a later day unless the rule says why."""
    what = ", ".join(f"'{n}'" for n in names)
    if not causal and not declared:
        raise RuleError(
            f"{what} reads later days (through {via}): a day's result may not depend on a later day; "
            "if it must (a look-ahead window), say why with looks_ahead: '...'",
            *pos(d.source),
        )
    if causal and declared:
        raise RuleError(f"{what} declares looks_ahead but reads no later day: remove the declaration", *pos(d.source))
    if declared:
        for n in names:
            plan.looks_ahead[n] = declared


def _shared_column(p: Planner, out: Any, column: str, kind: str) -> tuple[str, bool]:
    """The column that holds this value: an earlier one computing exactly the
    same (same expression, kind, level and combine), or its own."""
    try:
        key = f"{kind} {out.type} {out.level} {out.values} {out.inexact} " + out.expr.meta.serialize(format="json")
    except Exception:  # noqa: BLE001 - an expression polars cannot serialise is simply not shared
        return column, False
    if key in p.computed:
        return p.computed[key], True
    p.computed[key] = column
    return column, False


def _column_of(expr: pl.Expr) -> str:
    return expr.meta.output_name()


def _compile_definition(p: Planner, d: Definition, c: Compiler, plan: Plan) -> list[pl.Expr]:
    rs = d.ruleset
    if d.kind == "row":
        rv = d.payload
        out = c.compile(rv.value.node)
        if rv.of and (rv.of not in rs.row_values or p.symbols[f"row:{rs.id}:{rv.of}"].type not in (NUM, ANY)):
            raise RuleError(f"'of: {rv.of}' must name a numeric row value of this rule set", *pos(rv.value.source))
        of = _column_of(p.symbols[f"row:{rs.id}:{rv.of}"].expr) if rv.of else None
        column, known = _shared_column(p, out, row_column(rs, d.name), f"row {rv.combine} {of}")
        p.symbols[f"row:{rs.id}:{d.name}"] = out.symbol(pl.col(column))
        if rv.combine is not None:
            if not known:
                plan.row_combines.append(RowCombine(column, rv.combine, of, out.type, out.values))
            p.symbols[f"day:{rs.id}:{d.name}"] = Symbol(pl.col(column), out.type, "day", out.values, inexact=out.inexact)
        return [] if known else [out.expr.alias(column)]
    if d.kind == "let":
        out = c.compile(d.payload.node)
        # values computed only with reasons never stand in for a value grading reads
        words = f"let:{rs.id}:{d.name}" not in p.graded
        column, known = _shared_column(p, out, f"_let_{rs.id}__{d.name}", "words" if words else "let")
        p.symbols[f"let:{rs.id}:{d.name}"] = out.symbol(pl.col(column))
        return [] if known else [out.expr.alias(column)]
    if d.kind == "flag":
        flag = d.payload
        out = c.compile(flag.when.node)
        if out.type not in (BOOL, ANY):
            raise CompileError("a flag must be a condition (true or false)", 0)
        if out.level == "day":
            _check_causal(d, out.causal, out.looks_ahead_via, flag.looks_ahead, [d.name], plan)
        column = f"_flag_{d.name}"
        p.symbols[d.name] = Symbol(pl.col(column), BOOL, "day", causal=out.causal, looks_ahead_via=out.looks_ahead_via)
        plan.flags.append(d.name)
        return [out.expr.fill_null(False).alias(column)]
    if d.kind == "summary":
        s = d.payload
        plan.summary_keys.append(d.name)
        # a summary describes the whole course, later days included
        if s.value is not None:
            out = c.compile(s.value.node)
            if out.level != "course":
                raise CompileError(
                    "a summary must describe the whole course: use an aggregate such as max(), first_day() or count()", 0
                )
            if d.name not in p.flag_summaries:
                p.symbols[d.name] = Symbol(pl.col(d.name), out.type, "course", out.values, causal=False, looks_ahead_via=d.name)
            return [out.expr.alias(d.name)]
        compiled = compile_decision(s.decision, c, out_symbols := {})
        if compiled.level != "course":
            raise RuleError("a summary's cases must use course-level values only", *pos(s.decision.source))
        if d.name not in p.flag_summaries:
            p.symbols[d.name] = Symbol(pl.col(d.name), out_symbols[d.name].type, "course", causal=False, looks_ahead_via=d.name)
        return compiled.exprs
    dec: Decision = d.payload
    for group, src in zip(dec.note_missing, dec.note_sources):
        for name in group:
            if name not in p.contract.columns:
                raise src.error(f"note_missing names '{name}', which is not an input column")
    compiled = compile_decision(dec, c, p.symbols)
    names = list(dec.outputs) + ([dec.reason_key] if dec.reason_key else [])
    _check_causal(d, compiled.causal, compiled.looks_ahead_via, dec.looks_ahead, names, plan)
    for o in dec.outputs:
        plan.outputs.append(Output(o, rs.id, compiled.types[o]))
    if dec.reason_key and dec.reason_key not in plan.reason_keys:
        plan.reason_keys.append(dec.reason_key)
    if compiled.reason is not None:
        plan.reasons.append(compiled.reason)
    return compiled.exprs
