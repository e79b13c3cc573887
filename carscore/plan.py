"""Planning: every rule set's definitions compiled once into one plan.

Row values are computed on each input row, then combined into the day.
Day definitions (``let`` values, decisions, flags and summaries of all rule
sets) are ordered by what they refer to, so a rule may use another rule
set's output (the bone-marrow summary uses ``bm_response``, a flag uses a
kinetics summary). Definitions that do not depend on each other are computed
together, in parallel, by polars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from carscore.combine import RowCombine
from carscore.compile import ANY, BOOL, DAY, NUM, TEXT, CompileError, Compiler, Symbol, value_type
from carscore.contract import Contract
from carscore.decisions import ReasonPass, compile_decision, pos
from carscore.errors import RuleError, RuleErrors
from carscore.expr import names_in
from carscore.rulefile import Source, Template
from carscore.ruleset import Decision, RuleSet

_KIND_TYPES = {"integer": NUM, "number": NUM, "boolean": BOOL, "dose": BOOL, "enum": TEXT, "text": TEXT, "time": NUM}
# facts of the course rather than observations of a day: known from the infusion on
_COURSE_COLUMNS = ("age_years", "patient_id", "infusion")
# definitions built one on another: each level is one step of the compiled plan
MAX_DEFINITION_DEPTH = 400


def column_symbol(contract: Contract, name: str) -> Symbol | None:
    if name == DAY:
        return Symbol(pl.col(DAY), NUM, "day")
    col = contract.columns.get(name)
    if col is None:
        return None
    level = "course" if name in _COURSE_COLUMNS else "day"
    return Symbol(pl.col(name), _KIND_TYPES[col.kind], level, col.values or None)


def _param_symbol(value: Any) -> Symbol:
    # a list parameter has no column of its own: its values are spelled out after 'in'
    expr = pl.lit(None) if isinstance(value, (list, tuple)) else pl.lit(value)
    return Symbol(expr, value_type(value), "course", constant=value, is_constant=True)


def row_column(rs: RuleSet, name: str) -> str:
    return f"_row_{rs.id}__{name}"


@dataclass
class _Definition:
    key: str
    ruleset: RuleSet
    kind: str  # row | let | decision | flag | summary
    name: str
    source: Source
    refs: set[str]
    payload: Any
    deps: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Output:
    """A day-level result column and what kind of value it holds."""

    name: str
    ruleset: str
    type: str


@dataclass
class Plan:
    row_batches: list[list[pl.Expr]]
    row_combines: list[RowCombine]
    batches: list[list[pl.Expr]]
    outputs: list[Output]
    reason_keys: list[str]
    flags: list[str]
    summary_keys: list[str]
    reasons: list[ReasonPass] = field(default_factory=list)
    # day outputs, flags and reason keys that read later days, with the rule's why
    looks_ahead: dict[str, str] = field(default_factory=dict)
    # input columns whose presence in the course's file a rule asks about
    captured: set[str] = field(default_factory=set)
    word_batches: list[list[pl.Expr]] = field(default_factory=list)  # words for reasons, computed only with reasons


def decision_refs(d: Decision, words: bool = True) -> set[str]:
    """The names a decision reads; ``words=False``: those its grading reads (not its reasons)."""
    refs: set[str] = set()
    for case in d.cases:
        if case.when:
            refs |= names_in(case.when.node)
        for crit in case.worst:
            refs |= names_in(crit.when.node)
            if words:
                refs |= _template_refs(crit.reason)
        if words:
            refs |= _template_refs(case.reason)
    for group in d.note_missing:
        refs |= set(group)
    return refs


def _template_refs(t: Template | None) -> set[str]:
    refs: set[str] = set()
    if t:
        for _, node, _ in t.parts:
            if node is not None:
                refs |= names_in(node)
    return refs


def topological(defs: dict[str, _Definition]) -> list[str]:
    """Definitions in an order where each comes after what it uses. Iterative,
    so a long chain of definitions costs no recursion."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: in progress, 2: done
    for root in defs:
        if state.get(root) == 2:
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(defs[root].deps))]
        path = [root]
        state[root] = 1
        while stack:
            key, pending = stack[-1]
            if pending:
                dep = pending.pop()
                if state.get(dep) == 2:
                    continue
                if state.get(dep) == 1:
                    cycle = [defs[k].name for k in path[path.index(dep) :] + [dep]]
                    if len(cycle) > 12:
                        cycle = cycle[:5] + [f"... ({len(cycle) - 10} more) ..."] + cycle[-5:]
                    names = " -> ".join(cycle)
                    raise RuleErrors([defs[dep].source.error(f"these definitions depend on each other in a circle: {names}")])
                state[dep] = 1
                path.append(dep)
                stack.append((dep, sorted(defs[dep].deps)))
            else:
                stack.pop()
                path.pop()
                state[key] = 2
                order.append(key)
    return order


class _Planner:
    def __init__(self, rulesets: list[RuleSet], contract: Contract):
        self.rulesets = rulesets
        self.contract = contract
        self.columns = frozenset(contract.columns)
        self.errors: list[RuleError] = []
        self.defs: dict[str, _Definition] = {}
        self.global_names: dict[str, str] = {}  # name -> definition key
        self.reason_owner: dict[str, RuleSet] = {}
        self.symbols: dict[str, Symbol] = {}
        self.captured: set[str] = set()
        # compiled row and let values by what they compute: a definition that
        # computes exactly what an earlier one does (a library included by several
        # systems with the same parameters) reads that column instead of its own
        self.computed: dict[str, str] = {}
        self.flag_summaries: set[str] = set()  # summary keys that share their name with a flag
        self.graded: set[str] = set()  # let values that grading reads (the others serve reasons)

    # -- definitions and their names --

    def claim(self, name: str, key: str, rs: RuleSet, src: Source) -> None:
        held = self.global_names.get(name)
        if held is not None and key.startswith("summary:") and held == f"flag:{rs.id}:{name}":
            # a course summary may share its name with its rule set's day flag
            # (criteria §7.5: iec_hs_suspected, flagged each day and summarised per
            # course); in conditions the name reads the flag
            self.flag_summaries.add(name)
            return
        if name in self.global_names:
            other = self.defs[self.global_names[name]].ruleset
            self.errors.append(src.error(f"'{name}' is already defined by rule set '{other.id}' ({other.file})"))
        elif column_symbol(self.contract, name) is not None:
            self.errors.append(src.error(f"'{name}' is an input column and cannot be redefined"))
        else:
            self.global_names[name] = key

    def claim_reason(self, d: Decision, rs: RuleSet) -> None:
        key = d.reason_key
        if not key:
            return
        owner = self.reason_owner.get(key)
        if owner is not None and owner is not rs:
            self.errors.append(
                RuleError(f"reason key '{key}' is already used by rule set '{owner.id}' ({owner.file})", *pos(d.source))
            )
        self.reason_owner[key] = rs

    def gather(self) -> None:
        for rs in self.rulesets:
            for name, rv in rs.row_values.items():
                if name in rs.parameters or column_symbol(self.contract, name) is not None:
                    self.errors.append(rv.value.source.error(f"'{name}' is already a parameter or input column"))
                key = f"row:{rs.id}:{name}"
                self.defs[key] = _Definition(key, rs, "row", name, rv.value.source, names_in(rv.value.node), rv)
            for name, expr in rs.lets.items():
                key = f"let:{rs.id}:{name}"
                if name in rs.parameters or name in rs.row_values or column_symbol(self.contract, name) is not None:
                    self.errors.append(expr.source.error(f"'{name}' is already a parameter, row value or input column"))
                self.defs[key] = _Definition(key, rs, "let", name, expr.source, names_in(expr.node), expr)
            for i, d in enumerate(rs.decisions):
                key = f"decision:{rs.id}:{i}"
                self.defs[key] = _Definition(key, rs, "decision", ",".join(d.outputs), d.source, decision_refs(d), d)  # type: ignore[arg-type]
                for o in d.outputs:
                    self.claim(o, key, rs, d.source)  # type: ignore[arg-type]
                self.claim_reason(d, rs)
            for fid, flag in rs.flags.items():
                key = f"flag:{rs.id}:{fid}"
                self.defs[key] = _Definition(key, rs, "flag", fid, flag.when.source, names_in(flag.when.node), flag)
                self.claim(fid, key, rs, flag.when.source)
            for skey, s in rs.summary.items():
                key = f"summary:{rs.id}:{skey}"
                src = s.value.source if s.value else s.decision.source  # type: ignore[union-attr]
                refs = names_in(s.value.node) if s.value else decision_refs(s.decision)  # type: ignore[arg-type]
                self.defs[key] = _Definition(key, rs, "summary", skey, src, refs, s)  # type: ignore[arg-type]
                self.claim(skey, key, rs, src)  # type: ignore[arg-type]
        if self.errors:
            raise RuleErrors(self.errors)
        for d in self.defs.values():
            rs = d.ruleset
            for ref in d.refs:
                if "." in ref:
                    # another rule set's definition by qualified name (astct_crs.hypoxia): a day
                    # definition waits for the let it reads, a row value for the row value
                    owner, _, name = ref.partition(".")
                    target = f"{'row' if d.kind == 'row' else 'let'}:{owner}:{name}"
                    if target in self.defs:
                        d.deps.add(target)
                    continue
                if ref in rs.parameters:
                    continue
                row = f"row:{rs.id}:{ref}"
                if row in self.defs:
                    if d.kind == "row":
                        d.deps.add(row)  # day definitions read row values after the row stage
                    continue
                if d.kind == "row":
                    continue
                local = f"let:{rs.id}:{ref}"
                if local in self.defs:
                    d.deps.add(local)
                elif ref in self.global_names:
                    d.deps.add(self.global_names[ref])

    # -- name resolution --

    def qualified(self, name: str) -> tuple[RuleSet, str] | None:
        owner, _, local = name.partition(".")
        for other in self.rulesets:
            if other.id == owner:
                return other, local
        raise CompileError(f"no rule set '{owner}' in use for '{name}'", 0)

    def resolve_row(self, name: str, rs: RuleSet) -> Symbol | None:
        if "." in name:
            found = self.qualified(name)
            assert found is not None
            other, local = found
            if local not in other.row_values and local not in other.parameters:
                raise CompileError(f"'{local}' is not a row value or parameter of rule set '{other.id}'", 0)
            return self.resolve_row(local, other)
        if name in rs.parameters:
            return _param_symbol(rs.parameters[name].value)
        if name in rs.row_values:
            return self.symbols.get(f"row:{rs.id}:{name}")
        if f"let:{rs.id}:{name}" in self.defs or name in self.global_names:
            raise CompileError(f"'{name}' is a day value; a row value reads its own row's columns only", 0)
        return column_symbol(self.contract, name)

    def resolve_day(self, name: str, rs: RuleSet) -> Symbol | None:
        if "." in name:
            found = self.qualified(name)
            assert found is not None
            other, local = found
            if local not in other.parameters and local not in other.row_values and f"let:{other.id}:{local}" not in self.defs:
                raise CompileError(f"'{local}' is not a parameter, row value or let of rule set '{other.id}'", 0)
            return self.resolve_day(local, other)
        if name in rs.parameters:
            return _param_symbol(rs.parameters[name].value)
        if name in rs.row_values:
            if rs.row_values[name].combine is None:
                raise CompileError(f"'{name}' is a row value without 'combine': it has no day value", 0)
            return self.symbols.get(f"day:{rs.id}:{name}")
        local = self.symbols.get(f"let:{rs.id}:{name}")
        if local is not None:
            return local
        if name in self.global_names:
            return self.symbols.get(name)
        return column_symbol(self.contract, name)

    def compiler(self, d: _Definition) -> Compiler:
        rs = d.ruleset
        if d.kind == "row":
            return Compiler(lambda n: self.resolve_row(n, rs), row_level=True, columns=self.columns)
        return Compiler(lambda n: self.resolve_day(n, rs), columns=self.columns)


def build_plan(rulesets: list[RuleSet], contract: Contract) -> Plan:
    planner = _Planner(rulesets, contract)
    planner.gather()
    return _compile(planner)


def _locate(d: _Definition, exc: CompileError) -> RuleError:
    """Map an error inside one of a definition's expressions to its file position."""
    src = exc.source or d.source
    return src.error(exc.message, exc.offset)


def _names_defined(d: _Definition) -> list[str]:
    if d.kind in ("row", "let"):
        return [f"{d.kind}:{d.ruleset.id}:{d.name}"]
    if d.kind == "decision":
        return list(d.payload.outputs)
    return [d.name]


def _graded_lets(p: _Planner) -> set[str]:
    """The let values that grading reads (conditions, outputs, flags, summaries),
    directly or through other lets; the others serve reasons only."""

    def lets_read(d: _Definition, refs: set[str]) -> list[str]:
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


def _compile(p: _Planner) -> Plan:
    plan = Plan([], [], [], [], [], [], [])
    row_batches: dict[int, list[pl.Expr]] = {}
    batches: dict[int, list[pl.Expr]] = {}
    depth: dict[str, int] = {}
    rows = {k: d for k, d in p.defs.items() if d.kind == "row"}
    days = {k: d for k, d in p.defs.items() if d.kind != "row"}
    graded = p.graded = _graded_lets(p)
    word_batches: dict[int, list[pl.Expr]] = {}
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
        target = row_batches if d.kind == "row" else word_batches if words_only else batches
        target.setdefault(level, []).extend(produced)
    if p.errors:
        raise RuleErrors(p.errors)
    plan.row_batches = [row_batches[k] for k in sorted(row_batches)]
    plan.batches = [batches[k] for k in sorted(batches)]
    plan.word_batches = [word_batches[k] for k in sorted(word_batches)]
    plan.captured = p.captured
    return plan


def _check_causal(d: _Definition, causal: bool, via: str, declared: str, names: list[str], plan: Plan) -> None:
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


def _shared_column(p: _Planner, out: Any, column: str, kind: str) -> tuple[str, bool]:
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


def _compile_definition(p: _Planner, d: _Definition, c: Compiler, plan: Plan) -> list[pl.Expr]:
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
