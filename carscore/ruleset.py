"""Rule sets: YAML files turned into typed objects, checked as they load.

A rule set is one YAML file:

    id, title, version, citation        who decides, and on what authority
    parameters: {name: {value, citation, unit?, description?}}
    row_values: {name: {value, combine, of?}}  values of one input row (one
                assessment), combined into the day: max | min | any | all |
                first | last | sum, or row_with_max / row_with_min (the value
                on the row where the row value named by ``of`` is highest /
                lowest). Without ``combine`` a row value only serves others.
    let:        {name: expression}       named intermediate values (day or course)
    decisions:  [{outputs, reason, cases, note_missing?, looks_ahead?}]
    flags:      {id: expression | {when, description?, looks_ahead?}}
    summary:    {key: expression | {cases: [...]}}

A decision's cases are tried in order and the first whose ``when`` holds
gives the outputs and the reason; a case with ``worst:`` instead takes the
highest grade among its criteria that hold and names every one of them.

A day's result may not depend on a later day (criteria §0) unless its
decision or flag says why it looks ahead (``looks_ahead: "..."``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carscore.errors import RuleError, RuleErrors
from carscore.presentation import OutputView, read_outputs, standard_summaries
from carscore.rulefile import Expression, FieldReader, Source, Template, load_yaml_file
from carscore.yamlsafe import LDict, LList


@dataclass(frozen=True)
class Parameter:
    name: str
    value: Any
    citation: str
    unit: str = ""
    description: str = ""


ROW_COMBINES = ("max", "min", "any", "all", "first", "last", "sum", "row_with_max", "row_with_min")


@dataclass(frozen=True)
class RowValue:
    """A value of one input row, and how the rows of a day combine into the day's value."""

    name: str
    value: Expression
    combine: str | None = None  # None: read by other row values only
    of: str | None = None  # row_with_max / row_with_min: the row value that picks the row


@dataclass(frozen=True)
class Criterion:
    """One line of a worst-of table: a grade and when it applies."""

    value: Any
    when: Expression
    reason: Template | None


@dataclass(frozen=True)
class Case:
    when: Expression | None
    then: dict[str, Any]
    reason: Template | None
    worst: tuple[Criterion, ...] = ()
    source: Source | None = None


@dataclass(frozen=True)
class Decision:
    outputs: tuple[str, ...]
    reason_key: str | None
    cases: tuple[Case, ...]
    note_missing: tuple[tuple[str, ...], ...] = ()
    source: Source | None = None
    note_sources: tuple[Source, ...] = ()
    looks_ahead: str = ""  # why this day result may read later days


@dataclass(frozen=True)
class Flag:
    id: str
    when: Expression
    description: str = ""
    looks_ahead: str = ""


@dataclass(frozen=True)
class Summary:
    key: str
    value: Expression | None = None
    decision: Decision | None = None


@dataclass
class RuleSet:
    id: str
    title: str
    version: str
    citation: str
    file: str
    description: str = ""
    # the grading system the rule set belongs to (astct, lee2014, ...): graded when
    # selected with --systems (astct always); rule sets without one always run
    system: str = ""
    # a library holds definitions only (parameters, inputs, row values, let): it is
    # never graded itself; a rule set that includes it grades with its own copy of
    # them, read with that rule set's parameters (criteria §6.12)
    library: bool = False
    includes: tuple[str, ...] = ()
    sha256: str = ""  # of the bytes read, so a result names exactly the rules it used
    parameters: dict[str, Parameter] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)  # input columns it adds to the contract
    input_positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    row_values: dict[str, RowValue] = field(default_factory=dict)
    lets: dict[str, Expression] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    flags: dict[str, Flag] = field(default_factory=dict)
    summary: dict[str, Summary] = field(default_factory=dict)
    presentation: dict[str, OutputView] = field(default_factory=dict)  # how each output is shown

    @property
    def outputs(self) -> list[str]:
        return [o for d in self.decisions for o in d.outputs]


# --- building from located YAML ---------------------------------------------


def _kind(value: Any) -> str | None:
    """number, text or boolean; None for anything else (a list parameter's items)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


def _scalar_ok(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def read_ruleset(path: Path) -> RuleSet:
    """Load and check one rule file; raise RuleErrors listing every problem found."""
    file = str(path)
    doc, data = load_yaml_file(path, "rule file")
    r = FieldReader(file)
    if not isinstance(doc, LDict):
        raise RuleErrors([RuleError("a rule file must be a mapping with id, title, version and citation", file, 1, 1)])
    r.fields(
        doc,
        {
            "id",
            "title",
            "version",
            "citation",
            "description",
            "system",
            "library",
            "includes",
            "inputs",
            "parameters",
            "row_values",
            "let",
            "decisions",
            "flags",
            "summary",
            "outputs",
        },
        {"id", "title", "version", "citation"},
        "the rule set",
    )
    rs = RuleSet(
        id=r.text(doc, "id", "the rule set"),
        title=r.text(doc, "title", "the rule set"),
        version=r.text(doc, "version", "the rule set"),
        citation=r.text(doc, "citation", "the rule set"),
        description=r.text(doc, "description", "the rule set", required=False),
        file=file,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    if "id" in doc:
        r.identifier(doc["id"], doc, "rule set id")
    if "system" in doc and r.identifier(doc["system"], doc, "system"):
        rs.system = str(doc["system"])
    if "library" in doc:
        if isinstance(doc["library"], bool):
            rs.library = doc["library"]
        else:
            r.err("'library' must be true or false", doc["library"], doc)
    if "includes" in doc:
        names = doc["includes"]
        if isinstance(names, LList) and all(isinstance(n, str) and r.identifier(n, names, "included rule set id") for n in names):
            rs.includes = tuple(names)
        else:
            r.err("'includes' must be a list of rule set ids (libraries)", names, doc)

    params = r.mapping(doc.get("parameters", LDict()), "'parameters'", doc) if "parameters" in doc else None
    for name, spec in (params or {}).items():
        if not r.identifier(name, spec, "parameter name"):
            continue
        if not isinstance(spec, LDict):
            r.key_err(params, name, f"parameter '{name}' needs 'value' and 'citation'")
            continue
        r.fields(spec, {"value", "citation", "unit", "description"}, {"value", "citation"}, f"parameter '{name}'")
        value = spec.get("value")
        if isinstance(value, list):
            # a list parameter: the values after 'in' (which devices count as grade 3)
            kinds = {_kind(v) for v in value}
            if not value or len(kinds) != 1 or None in kinds:
                r.err(f"parameter '{name}': a list holds values of one kind (numbers, words or true/false)", value, spec)
            value = tuple(value)
        elif not _scalar_ok(value) or value is None:
            r.err(f"parameter '{name}' must have a number, text, true/false or a list of them as its value", value, spec)
        rs.parameters[name] = Parameter(
            name,
            value,
            r.text(spec, "citation", f"parameter '{name}'"),
            r.text(spec, "unit", f"parameter '{name}'", required=False),
            r.text(spec, "description", f"parameter '{name}'", required=False),
        )

    if "inputs" in doc:
        from carscore.contract import read_columns

        specs = r.mapping(doc["inputs"], "'inputs'", doc)
        if specs is not None:
            for name in specs:
                r.identifier(name, specs, "input column")
            rs.inputs = read_columns(r, specs)
            rs.input_positions = {name: specs.key_at.get(name, (specs.line, specs.col)) for name in specs}
    _read_row_values(r, doc, rs)

    lets = r.mapping(doc["let"], "'let'", doc) if "let" in doc else None
    for name, value in (lets or {}).items():
        if r.identifier(name, value, "name"):
            expr = r.expression(value, lets, f"'{name}'")
            if expr:
                rs.lets[name] = expr

    decisions = doc.get("decisions")
    if decisions is not None and not isinstance(decisions, LList):
        r.err("'decisions' must be a list", decisions, doc)
    for item in decisions or []:
        d = _read_decision(r, item, require_outputs=True)
        if d:
            rs.decisions.append(d)

    flags = r.mapping(doc["flags"], "'flags'", doc) if "flags" in doc else None
    for fid, spec in (flags or {}).items():
        if not r.identifier(fid, spec, "flag id"):
            continue
        description = looks_ahead = ""
        cond = spec
        if isinstance(spec, LDict):
            r.fields(spec, {"when", "description", "looks_ahead"}, {"when"}, f"flag '{fid}'")
            cond = spec.get("when")
            description = r.text(spec, "description", f"flag '{fid}'", required=False)
            looks_ahead = r.text(spec, "looks_ahead", f"flag '{fid}'", required=False)
        expr = r.expression(cond, spec, f"flag '{fid}'")
        if expr:
            rs.flags[fid] = Flag(fid, expr, description, looks_ahead)

    summary = r.mapping(doc["summary"], "'summary'", doc) if "summary" in doc else None
    for key, spec in (summary or {}).items():
        if not r.identifier(key, spec, "summary key"):
            continue
        if isinstance(spec, LDict):
            d = _read_decision(r, spec, require_outputs=False, default_output=key)
            if d:
                rs.summary[key] = Summary(key, decision=d)
        else:
            expr = r.expression(spec, summary, f"summary '{key}'")
            if expr:
                rs.summary[key] = Summary(key, value=expr)

    if "outputs" in doc:
        _read_presentation(r, doc, rs)
    if rs.library:
        graded = [k for k in ("system", "includes", "decisions", "flags", "summary", "outputs") if k in doc]
        for k in graded:
            r.key_err(doc, k, f"a library holds definitions only (parameters, inputs, row_values, let): '{k}' is not allowed")
    if r.errors:
        raise RuleErrors(r.errors)
    return rs


def _read_presentation(r: FieldReader, doc: LDict, rs: RuleSet) -> None:
    """The outputs' presentation, and the standard summaries of each grade that asks for them."""
    rs.presentation = read_outputs(r, doc)
    decided = set(rs.outputs)
    at = doc["outputs"]
    for name, view in rs.presentation.items():
        line, col = at.key_at.get(name, (at.line, at.col)) if isinstance(at, LDict) else (1, 1)
        if name not in decided:
            r.errors.append(RuleError(f"output '{name}' is not decided by any decision of this rule set", rs.file, line, col))
            continue
        if not view.summaries:
            continue
        for key, expr in standard_summaries(view, rs.file, line, col).items():
            if key in rs.summary:
                r.errors.append(
                    RuleError(
                        f"summary '{key}' comes from the outputs' 'summaries' pattern: do not write it too", rs.file, line, col
                    )
                )
            rs.summary[key] = Summary(key, value=expr)


def _read_decision(r: FieldReader, item: Any, require_outputs: bool, default_output: str = "") -> Decision | None:
    if not isinstance(item, LDict):
        r.err("a decision must be a mapping with 'outputs' and 'cases'", item)
        return None
    allowed = {"outputs", "reason", "cases", "note_missing", "looks_ahead"} if require_outputs else {"cases", "reason"}
    r.fields(item, allowed, {"outputs", "cases"} if require_outputs else {"cases"}, "a decision")
    outputs: list[str] = []
    if require_outputs:
        raw = item.get("outputs")
        raw = [raw] if isinstance(raw, str) else raw
        if not isinstance(raw, list) or not raw:
            r.err("'outputs' must name one or more output columns", item.get("outputs"), item)
            return None
        for o in raw:
            if r.identifier(o, item, "output"):
                outputs.append(str(o))
    else:
        outputs = [default_output]
    reason_key = item.get("reason")
    if reason_key is not None and not r.identifier(reason_key, item, "reason key"):
        reason_key = None
    notes: list[tuple[str, ...]] = []
    note_sources: list[Source] = []
    for note in item.get("note_missing") or []:
        if isinstance(note, str):
            notes.append(tuple(part.strip() for part in note.split("|")))
            note_sources.append(r.source(note, item))
        else:
            r.err("'note_missing' lists column names (a|b: either one is enough)", note, item)
    cases_raw = item.get("cases")
    if not isinstance(cases_raw, list) or not cases_raw:
        r.err("'cases' must be a non-empty list", cases_raw, item)
        return None
    cases: list[Case] = []
    for case in cases_raw:
        c = _read_case(r, case, outputs)
        if c:
            cases.append(c)
    src = r.source(item, item)
    looks_ahead = r.text(item, "looks_ahead", "a decision", required=False)
    return Decision(
        tuple(outputs), str(reason_key) if reason_key else None, tuple(cases), tuple(notes), src, tuple(note_sources), looks_ahead
    )


def _read_row_values(r: FieldReader, doc: LDict, rs: RuleSet) -> None:
    rows = r.mapping(doc["row_values"], "'row_values'", doc) if "row_values" in doc else None
    for name, spec in (rows or {}).items():
        if not r.identifier(name, spec, "row value"):
            continue
        combine = of = None
        value = spec
        if isinstance(spec, LDict):
            r.fields(spec, {"value", "combine", "of"}, {"value"}, f"row value '{name}'")
            value = spec.get("value")
            combine = spec.get("combine")
            of = spec.get("of")
            if combine is not None and combine not in ROW_COMBINES:
                r.err(f"row value '{name}': unknown combine '{combine}' (known: {', '.join(ROW_COMBINES)})", combine, spec)
                continue
            if (combine in ("row_with_max", "row_with_min")) != (of is not None):
                r.err(f"row value '{name}': 'of' (the row value that picks the row) goes with row_with_max/row_with_min", spec)
                continue
            if of is not None and not r.identifier(of, spec, "'of'"):
                continue
        expr = r.expression(value, spec if isinstance(spec, LDict) else rows, f"row value '{name}'")
        if expr:
            rs.row_values[name] = RowValue(name, expr, combine, of)


def _read_then(r: FieldReader, value: Any, outputs: list[str], at: Any) -> dict[str, Any]:
    if isinstance(value, LDict):
        out = {}
        for key, v in value.items():
            if key not in outputs:
                r.key_err(value, key, f"'{key}' is not one of this decision's outputs ({', '.join(outputs)})")
            elif not _scalar_ok(v):
                r.err(f"the value for '{key}' must be a number, text, true/false or null", v, value)
            else:
                out[key] = v
        return out
    if len(outputs) != 1:
        r.err(f"'then' must give a value for each output: {', '.join(outputs)}", value, at)
        return {}
    if not _scalar_ok(value):
        r.err("'then' must be a number, text, true/false or null", value, at)
        return {}
    return {outputs[0]: value}


def _read_case(r: FieldReader, case: Any, outputs: list[str]) -> Case | None:
    if not isinstance(case, LDict):
        r.err("a case must be a mapping with 'when', 'then' and 'reason'", case)
        return None
    r.fields(case, {"when", "then", "reason", "worst"}, set(), "a case")
    when = r.expression(case["when"], case, "'when'") if "when" in case else None
    if "when" in case and when is None:
        return None
    if ("then" in case) == ("worst" in case):
        r.err("a case needs either 'then' (its outputs) or 'worst' (a table of criteria)", case)
        return None
    then = _read_then(r, case["then"], outputs, case) if "then" in case else {}
    worst: list[Criterion] = []
    if "worst" in case:
        if len(outputs) != 1:
            r.err("'worst' needs a decision with exactly one output", case["worst"], case)
            return None
        items = case["worst"]
        if not isinstance(items, list) or not items:
            r.err("'worst' must be a non-empty list of criteria", items, case)
            return None
        for crit in items:
            if not isinstance(crit, LDict):
                r.err("a criterion must be a mapping with 'then', 'when' and 'reason'", crit, case)
                continue
            r.fields(crit, {"then", "when", "reason"}, {"then", "when"}, "a criterion")
            value = crit.get("then")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                r.err("a criterion's 'then' must be a number (a grade)", value, crit)
                continue
            w = r.expression(crit.get("when"), crit, "'when'")
            if w:
                worst.append(Criterion(value, w, r.template(crit.get("reason"), crit)))
    return Case(when, then, r.template(case.get("reason"), case), tuple(worst), r.source(case, case))


def read_rules(paths: list[Path]) -> list[RuleSet]:
    """Read every rule file given (folders: their *.yaml); all problems together."""
    files: list[Path] = []
    errors: list[RuleError] = []
    for p in paths:
        if p.is_dir():
            found = sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml")))
            if not found:
                errors.append(RuleError("no rule files (*.yaml) in this folder", str(p)))
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            errors.append(RuleError("no such rule file or folder", str(p)))
    rulesets: list[RuleSet] = []
    for f in files:
        try:
            rulesets.append(read_ruleset(f))
        except RuleErrors as exc:
            errors.extend(exc.errors)
    seen: dict[str, str] = {}
    for rs in rulesets:
        if rs.id in seen:
            errors.append(RuleError(f"rule set id '{rs.id}' is also used by {seen[rs.id]}", rs.file, 1, 1))
        seen[rs.id] = rs.file
    if errors:
        raise RuleErrors(errors)
    return rulesets


def builtin_rules_dir() -> Path:
    """The rule sets shipped with carscore (inside the installed package, or
    the checkout's rules/ folder when running from source)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "rules", here.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise RuleErrors([RuleError("the built-in rules folder is missing from this installation", str(here / "rules"))])
