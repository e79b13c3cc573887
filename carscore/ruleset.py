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
from dataclasses import replace
from pathlib import Path

from carscore.errors import RuleError, RuleErrors
from carscore.presentation import read_outputs, standard_summaries
from carscore.rulefile import FieldReader, load_yaml_file
from carscore.rulemodel import (  # noqa: F401 - the model is read from here too
    ROW_COMBINES,
    Case,
    Criterion,
    Decision,
    Flag,
    Parameter,
    RowValue,
    RuleSet,
    Summary,
    scalar_ok,
    value_kind,
)
from carscore.rulereaders import read_decision, read_row_values
from carscore.yamlsafe import LDict, LList

# --- building from located YAML ---------------------------------------------


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
            kinds = {value_kind(v) for v in value}
            if not value or len(kinds) != 1 or not kinds <= {"true/false", "number", "text"}:
                r.err(f"parameter '{name}': a list holds values of one kind (numbers, words or true/false)", value, spec)
            value = tuple(value)
        elif not scalar_ok(value) or value is None:
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
    read_row_values(r, doc, rs)

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
        d = read_decision(r, item, require_outputs=True)
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
            d = read_decision(r, spec, require_outputs=False, default_output=key)
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
        if name in rs.summary and name not in decided:
            # a summary key shown as a line of the course summary
            rs.presentation[name] = replace(view, of_course=True)
            continue
        if name not in decided:
            message = f"output '{name}' is not decided by any decision, nor a summary key, of this rule set"
            r.errors.append(RuleError(message, rs.file, line, col))
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
