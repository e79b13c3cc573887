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
from carscore.compile import BOOL, DAY, NUM, TEXT, CompileError, Compiler, Symbol, value_type
from carscore.contract import Contract
from carscore.decisions import ReasonPass, pos
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
class Definition:
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
    # words that read their own day only, in dependency order: worded with the reason, on its days only
    deferred_words: list[pl.Expr] = field(default_factory=list)


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


def topological(defs: dict[str, Definition]) -> list[str]:
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


class Planner:
    def __init__(self, rulesets: list[RuleSet], contract: Contract):
        self.rulesets = rulesets
        self.contract = contract
        self.columns = frozenset(contract.columns)
        self.errors: list[RuleError] = []
        self.defs: dict[str, Definition] = {}
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
                self.defs[key] = Definition(key, rs, "row", name, rv.value.source, names_in(rv.value.node), rv)
            for name, expr in rs.lets.items():
                key = f"let:{rs.id}:{name}"
                if name in rs.parameters or name in rs.row_values or column_symbol(self.contract, name) is not None:
                    self.errors.append(expr.source.error(f"'{name}' is already a parameter, row value or input column"))
                self.defs[key] = Definition(key, rs, "let", name, expr.source, names_in(expr.node), expr)
            for i, d in enumerate(rs.decisions):
                key = f"decision:{rs.id}:{i}"
                self.defs[key] = Definition(key, rs, "decision", ",".join(d.outputs), d.source, decision_refs(d), d)  # type: ignore[arg-type]
                for o in d.outputs:
                    self.claim(o, key, rs, d.source)  # type: ignore[arg-type]
                self.claim_reason(d, rs)
            for fid, flag in rs.flags.items():
                key = f"flag:{rs.id}:{fid}"
                self.defs[key] = Definition(key, rs, "flag", fid, flag.when.source, names_in(flag.when.node), flag)
                self.claim(fid, key, rs, flag.when.source)
            for skey, s in rs.summary.items():
                key = f"summary:{rs.id}:{skey}"
                src = s.value.source if s.value else s.decision.source  # type: ignore[union-attr]
                refs = names_in(s.value.node) if s.value else decision_refs(s.decision)  # type: ignore[arg-type]
                self.defs[key] = Definition(key, rs, "summary", skey, src, refs, s)  # type: ignore[arg-type]
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

    def compiler(self, d: Definition) -> Compiler:
        rs = d.ruleset
        if d.kind == "row":
            return Compiler(lambda n: self.resolve_row(n, rs), row_level=True, columns=self.columns)
        return Compiler(lambda n: self.resolve_day(n, rs), columns=self.columns)
