"""The rules engine: every rule set compiled once into one plan of columnar
expressions, run over the whole table of patient-days in a single pass.

Definitions (``let`` values, decisions, flags and summaries of all rule
sets) are ordered by what they refer to, so a rule may use another rule
set's output (the bone-marrow summary uses ``bm_response``, a flag uses a
kinetics summary). Definitions that do not depend on each other are
computed together, in parallel, by polars.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from carscore.compile import (
    ANY,
    BOOL,
    COURSE,
    DAY,
    NUM,
    TEXT,
    Compiled,
    CompileError,
    Compiler,
    Symbol,
    reads_timeline,
    value_type,
)
from carscore.contract import Contract, load_contract
from carscore.errors import RuleError, RuleErrors
from carscore.expr import names_in
from carscore.ruleset import Decision, Expression, RuleSet, Source, Template

_KIND_TYPES = {"integer": NUM, "number": NUM, "boolean": BOOL, "dose": BOOL, "enum": TEXT, "text": TEXT}


def column_symbol(contract: Contract, name: str) -> Symbol | None:
    if name == DAY:
        return Symbol(pl.col(DAY), NUM, "day")
    col = contract.columns.get(name)
    if col is None:
        return None
    level = "course" if name in ("age_years", "patient_id", "infusion") else "day"
    return Symbol(pl.col(name), _KIND_TYPES[col.kind], level, col.values or None)


def _param_symbol(value: Any) -> Symbol:
    return Symbol(pl.lit(value), value_type(value), "course", constant=value, is_constant=True)


@dataclass
class _Definition:
    key: str
    ruleset: RuleSet
    kind: str  # let | decision | flag | summary
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


@dataclass(frozen=True)
class ReasonPass:
    """How to word one decision's reasons: computed after grading, and only on
    the rows whose chosen case has a reason (most CSF and marrow days have
    none), so that wording never slows down grading."""

    key: str
    case_column: str
    cases_with_reason: tuple[int, ...]
    expr: pl.Expr
    # values read along the timeline (nearest_day(...), ...): computed on every
    # row before the rows to word are picked out
    timeline_values: tuple[pl.Expr, ...] = ()


@dataclass
class Plan:
    batches: list[list[pl.Expr]]
    outputs: list[Output]
    reason_keys: list[str]
    flags: list[str]
    summary_keys: list[str]
    reasons: list[ReasonPass] = field(default_factory=list)


class Engine:
    """Compiled rule sets, ready to assess any table of patient-days."""

    def __init__(
        self,
        rulesets: list[RuleSet],
        contract: Contract | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
    ):
        self.contract = contract or load_contract()
        self.rulesets = [self._override(rs, (overrides or {}).get(rs.id, {})) for rs in rulesets]
        unknown = set(overrides or {}) - {rs.id for rs in self.rulesets}
        if unknown:
            raise RuleErrors([RuleError(f"no rule set with id '{u}' to override") for u in sorted(unknown)])
        self.plan = self._compile()

    @staticmethod
    def _override(rs: RuleSet, values: dict[str, Any]) -> RuleSet:
        if not values:
            return rs
        params = dict(rs.parameters)
        for name, value in values.items():
            if name not in params:
                raise RuleErrors([RuleError(f"rule set '{rs.id}' has no parameter '{name}'", rs.file)])
            params[name] = replace(params[name], value=value)
        return replace(rs, parameters=params)

    # -- compilation --

    def _compile(self) -> Plan:
        errors: list[RuleError] = []
        defs: dict[str, _Definition] = {}
        global_names: dict[str, str] = {}  # name -> definition key

        def claim(name: str, key: str, rs: RuleSet, src: Source) -> None:
            if name in global_names:
                other = defs[global_names[name]].ruleset
                errors.append(src.error(f"'{name}' is already defined by rule set '{other.id}' ({other.file})"))
            elif column_symbol(self.contract, name) is not None:
                errors.append(src.error(f"'{name}' is an input column and cannot be redefined"))
            else:
                global_names[name] = key

        for rs in self.rulesets:
            for name, expr in rs.lets.items():
                key = f"let:{rs.id}:{name}"
                if name in rs.parameters or column_symbol(self.contract, name) is not None:
                    errors.append(expr.source.error(f"'{name}' is already a parameter or input column"))
                defs[key] = _Definition(key, rs, "let", name, expr.source, names_in(expr.node), expr)
            for i, d in enumerate(rs.decisions):
                key = f"decision:{rs.id}:{i}"
                refs = _decision_refs(d)
                defs[key] = _Definition(key, rs, "decision", ",".join(d.outputs), d.source, refs, d)  # type: ignore[arg-type]
                for o in d.outputs:
                    claim(o, key, rs, d.source)  # type: ignore[arg-type]
            for fid, flag in rs.flags.items():
                key = f"flag:{fid}"
                defs[key] = _Definition(key, rs, "flag", fid, flag.when.source, names_in(flag.when.node), flag)
                claim(fid, key, rs, flag.when.source)
            for skey, s in rs.summary.items():
                key = f"summary:{skey}"
                src = s.value.source if s.value else s.decision.source  # type: ignore[union-attr]
                refs = names_in(s.value.node) if s.value else _decision_refs(s.decision)  # type: ignore[arg-type]
                defs[key] = _Definition(key, rs, "summary", skey, src, refs, s)  # type: ignore[arg-type]
                claim(skey, key, rs, src)  # type: ignore[arg-type]
        if errors:
            raise RuleErrors(errors)

        for d in defs.values():
            for ref in d.refs:
                local = f"let:{d.ruleset.id}:{ref}"
                if ref in d.ruleset.parameters:
                    continue
                if local in defs:
                    d.deps.add(local)
                elif ref in global_names:
                    d.deps.add(global_names[ref])

        order = _topological(defs)
        self._reason_passes: list[ReasonPass] = []
        symbols: dict[str, Symbol] = {}  # definition-qualified names
        depth: dict[str, int] = {}
        batches: dict[int, list[pl.Expr]] = {}
        outputs: list[Output] = []
        reason_keys: list[str] = []
        flags: list[str] = []
        summary_keys: list[str] = []

        for key in order:
            d = defs[key]
            rs = d.ruleset

            def resolve(name: str, rs: RuleSet = rs) -> Symbol | None:
                if name in rs.parameters:
                    return _param_symbol(rs.parameters[name].value)
                local = symbols.get(f"let:{rs.id}:{name}")
                if local is not None:
                    return local
                if name in global_names:
                    return symbols.get(name)
                return column_symbol(self.contract, name)

            compiler = Compiler(resolve)
            level = 1 + max((depth[dep] for dep in d.deps), default=0)
            depth[key] = level
            try:
                produced = self._compile_definition(d, compiler, symbols)
            except (CompileError, RuleError) as exc:
                errors.append(_locate(d, exc) if isinstance(exc, CompileError) else exc)
                # stand-ins, so that what uses a broken definition is not reported again
                for name in _names_defined(d):
                    symbols.setdefault(name, Symbol(pl.lit(None), ANY, "day"))
                continue
            batches.setdefault(level, []).extend(produced)
            if d.kind == "decision":
                dec: Decision = d.payload
                for o in dec.outputs:
                    outputs.append(Output(o, rs.id, symbols[o].type))
                if dec.reason_key and dec.reason_key not in reason_keys:
                    reason_keys.append(dec.reason_key)
            elif d.kind == "flag":
                flags.append(d.name)
            elif d.kind == "summary":
                summary_keys.append(d.name)
        if errors:
            raise RuleErrors(errors)
        return Plan([batches[k] for k in sorted(batches)], outputs, reason_keys, flags, summary_keys, self._reason_passes)

    def _compile_definition(self, d: _Definition, c: Compiler, symbols: dict[str, Symbol]) -> list[pl.Expr]:
        rs = d.ruleset
        if d.kind == "let":
            expr: Expression = d.payload
            out = c.compile(expr.node)
            col = f"_let_{rs.id}__{d.name}"
            symbols[f"let:{rs.id}:{d.name}"] = Symbol(pl.col(col), out.type, out.level, out.values, out.constant, out.is_constant)
            return [out.expr.alias(col)]
        if d.kind == "flag":
            out = c.compile(d.payload.when.node)
            if out.type not in (BOOL, ANY):
                raise CompileError("a flag must be a condition (true or false)", 0)
            col = f"_flag_{d.name}"
            symbols[d.name] = Symbol(pl.col(col), BOOL, "day")
            return [out.expr.fill_null(False).alias(col)]
        if d.kind == "summary":
            s = d.payload
            if s.value is not None:
                out = c.compile(s.value.node)
                if out.level != "course":
                    raise CompileError(
                        "a summary must describe the whole course: use an aggregate such as max(), first_day() or count()", 0
                    )
                symbols[d.name] = Symbol(pl.col(d.name), out.type, "course", out.values)
                return [out.expr.alias(d.name)]
            exprs, types, level = _compile_decision(s.decision, c, symbols_out := {}, [])
            if level != "course":
                raise RuleError("a summary's cases must use course-level values only", *_pos(s.decision.source))
            symbols[d.name] = replace(symbols_out[d.name], level="course")
            return exprs
        dec: Decision = d.payload
        for group, src in zip(dec.note_missing, dec.note_sources):
            for name in group:
                if name not in self.contract.columns:
                    raise src.error(f"note_missing names '{name}', which is not an input column")
        exprs, _, _ = _compile_decision(dec, c, symbols, self._reason_passes)
        return exprs

    # -- running --

    def assess(self, days: pl.DataFrame, reasons: bool = True) -> pl.DataFrame:
        """Add every output, flag and summary column to a table of
        patient-days (one row per course and day, sorted by course then day).
        Unless ``reasons`` is false, also each day's reasons and its list of
        flags: the day-level detail that course summaries do not need."""
        if not _sorted_by_course_and_day(days):
            days = days.sort([COURSE, DAY])
        lf = days.lazy()
        for batch in self.plan.batches:
            lf = lf.with_columns(batch)
        if reasons:
            flag_list = (
                pl.concat_list([pl.when(pl.col(f"_flag_{f}")).then(pl.lit(f)) for f in self.plan.flags]).list.drop_nulls()
                if self.plan.flags
                else pl.lit([], dtype=pl.List(pl.String))
            )
            lf = lf.with_columns(flag_list.alias("flags"))
        out = lf.collect()
        if reasons:
            out = self.word_reasons(out)
        # intermediate values served the grading; keep inputs and results only
        return out.drop([c for c in out.columns if c.startswith(("_let_", "_flag_", "_case_"))])

    def word_reasons(self, graded: pl.DataFrame) -> pl.DataFrame:
        columns = []
        indexed = graded.lazy().with_row_index("_row")
        timeline_values = [e for rp in self.plan.reasons for e in rp.timeline_values]
        if timeline_values:
            indexed = indexed.with_columns(timeline_values)
        for rp in self.plan.reasons:
            part = (
                indexed.filter(pl.col(rp.case_column).is_in(list(rp.cases_with_reason)))
                .select("_row", rp.expr.alias("_text"))
                .collect()
            )
            full = pl.Series(f"_reason_{rp.key}", [None] * graded.height, dtype=pl.String)
            if part.height:
                full = full.scatter(part["_row"], part["_text"])
            columns.append(full)
        return graded.with_columns(columns) if columns else graded


def _sorted_by_course_and_day(days: pl.DataFrame) -> bool:
    if days.height < 2:
        return True
    course, day = pl.col(COURSE), pl.col(DAY)
    unsorted = (course.diff() < 0) | ((course.diff() == 0) & (day.diff() <= 0))
    return not days.select(unsorted.any()).item()


def _names_defined(d: _Definition) -> list[str]:
    if d.kind == "let":
        return [f"let:{d.ruleset.id}:{d.name}"]
    if d.kind == "decision":
        return list(d.payload.outputs)
    return [d.name]


def _locate(d: _Definition, exc: CompileError) -> RuleError:
    """Map an error inside one of a definition's expressions to its file position."""
    src = getattr(exc, "source", None) or d.source
    return src.error(exc.message, exc.offset)


def _pos(src: Source | None) -> tuple[str, int, int]:
    return (src.file, src.line, src.col) if src else ("", 0, 0)


def _decision_refs(d: Decision) -> set[str]:
    refs: set[str] = set()
    for case in d.cases:
        if case.when:
            refs |= names_in(case.when.node)
        for crit in case.worst:
            refs |= names_in(crit.when.node)
            refs |= _template_refs(crit.reason)
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


def _topological(defs: dict[str, _Definition]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(key: str, chain: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = chain[chain.index(key) :] + [key]
            d = defs[key]
            names = " -> ".join(defs[k].name for k in cycle)
            raise RuleErrors([d.source.error(f"these definitions depend on each other in a circle: {names}")])
        state[key] = 1
        for dep in sorted(defs[key].deps):
            visit(dep, chain + [key])
        state[key] = 2
        order.append(key)

    for key in defs:
        visit(key, [])
    return order


def _compile_in(c: Compiler, expr: Expression) -> Compiled:
    try:
        return c.compile(expr.node)
    except CompileError as exc:
        exc.source = expr.source  # type: ignore[attr-defined]
        raise


def format_value(c: Compiled) -> pl.Expr:
    """A value as words for a reason text; blank becomes 'not recorded'."""
    if c.is_constant and c.constant is not None and not isinstance(c.constant, bool):
        return pl.lit(str(c.constant))  # a parameter reads as written in its rule file
    e = c.expr
    if c.type == BOOL:
        text = pl.when(e.is_null()).then(None).when(e).then(pl.lit("yes")).otherwise(pl.lit("no"))
    else:
        text = e.cast(pl.String)
        if c.type == NUM:
            text = text.str.strip_suffix(".0")
    return text.fill_null("not recorded")


_TIMELINE_VALUE_NUMBER = itertools.count()


def _template(c: Compiler, t: Template | None, timeline_values: list[pl.Expr] | None = None) -> pl.Expr | None:
    if t is None:
        return None
    pieces: list[pl.Expr] = []
    for literal, node, offset in t.parts:
        if node is None:
            pieces.append(pl.lit(literal))
            continue
        try:
            value = c.compile(node)
            if timeline_values is not None and reads_timeline(node):
                name = f"_timeline_value_{next(_TIMELINE_VALUE_NUMBER)}"
                timeline_values.append(value.expr.alias(name))
                value = replace(value, expr=pl.col(name))
            pieces.append(format_value(value))
        except CompileError as exc:
            err = CompileError(exc.message, offset + exc.offset)
            err.source = t.source  # type: ignore[attr-defined]
            raise err from None
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


def _compile_decision(
    dec: Decision, c: Compiler, symbols: dict[str, Symbol], reason_passes: list[ReasonPass]
) -> tuple[list[pl.Expr], dict[str, str], str]:
    levels: set[str] = set()
    chains: dict[str, Any] = {o: None for o in dec.outputs}
    reason_chain: Any = None
    case_chain: Any = None
    cases_with_reason: list[int] = []
    timeline_values: list[pl.Expr] = []
    values_seen: dict[str, list[Any]] = {o: [] for o in dec.outputs}
    grade_word = "grade"

    def add(chain: Any, cond: pl.Expr, value: pl.Expr) -> Any:
        return pl.when(cond).then(value) if chain is None else chain.when(cond).then(value)

    for case_index, case in enumerate(dec.cases):
        if case.when is not None:
            cw = _compile_in(c, case.when)
            if cw.type not in (BOOL, ANY):
                raise _at(case.when, "'when' must be a condition (true or false)")
            levels.add(cw.level)
            cond = cw.expr.fill_null(False)
        else:
            cond = pl.lit(True)
        case_reason = _template(c, case.reason, timeline_values)
        if case.worst:
            output = dec.outputs[0]
            crit_conds, crit_reasons = [], []
            for crit in sorted(case.worst, key=lambda k: -k.value):
                cc = _compile_in(c, crit.when)
                if cc.type not in (BOOL, ANY):
                    raise _at(crit.when, "'when' must be a condition (true or false)")
                levels.add(cc.level)
                held = cc.expr.fill_null(False)
                crit_conds.append((held, crit.value))
                text = _template(c, crit.reason, timeline_values)
                text = pl.lit("criterion met") if text is None else text
                crit_reasons.append(pl.when(held).then(pl.concat_str([text, pl.lit(f" → {grade_word} {crit.value}")])))
                values_seen[output].append(crit.value)
            met = pl.any_horizontal([h for h, _ in crit_conds])
            cond = cond & met
            value = pl.max_horizontal([pl.when(h).then(pl.lit(v)) for h, v in crit_conds])
            chains[output] = add(chains[output], cond, value)
            parts = ([case_reason] if case_reason is not None else []) + crit_reasons
            reason = pl.concat_str(parts, separator="; ", ignore_nulls=True)
        else:
            for o in dec.outputs:
                v = case.then.get(o)
                values_seen[o].append(v)
                chains[o] = add(chains[o], cond, pl.lit(v))
            reason = case_reason if case_reason is not None else pl.lit(None, dtype=pl.String)
        case_chain = add(case_chain, cond, pl.lit(case_index, dtype=pl.Int16))
        if case.reason is not None or case.worst:
            cases_with_reason.append(case_index)
            reason_chain = add(reason_chain, pl.col(f"_case_{dec.reason_key}") == case_index, reason)

    exprs: list[pl.Expr] = []
    types: dict[str, str] = {}
    for o in dec.outputs:
        t, dtype = _value_type(values_seen[o])
        if t == ANY and any(v is not None for v in values_seen[o]):
            raise RuleError(f"the values given for '{o}' mix numbers, words and true/false", *_pos(dec.source))
        expr = chains[o].otherwise(None)
        if dtype is not None:
            expr = expr.cast(dtype)
        exprs.append(expr.alias(o))
        types[o] = t
        symbols[o] = Symbol(pl.col(o), t, "day")
    if dec.reason_key:
        case_column = f"_case_{dec.reason_key}"
        exprs.append(case_chain.otherwise(None).alias(case_column))
        if reason_chain is not None:
            reason = reason_chain.otherwise(None)
            if dec.note_missing:
                reason = _with_missing_note(reason, dec, decided=pl.col(dec.outputs[0]).is_not_null())
            reason_passes.append(
                ReasonPass(dec.reason_key, case_column, tuple(cases_with_reason), reason, tuple(timeline_values))
            )
    level = "day" if "day" in levels or not levels else "course"
    return exprs, types, level


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


def _at(expr: Expression, message: str) -> CompileError:
    err = CompileError(message, 0)
    err.source = expr.source  # type: ignore[attr-defined]
    return err
