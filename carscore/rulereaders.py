"""Readers of the parts of a rule file that hold rules: row values, decisions
and their cases (every problem kept with its file:line:col)."""

from __future__ import annotations

from typing import Any

from carscore.rulefile import FieldReader, Source
from carscore.rulemodel import ROW_COMBINES, Case, Criterion, Decision, RowValue, RuleSet, scalar_ok
from carscore.yamlsafe import LDict


def read_decision(r: FieldReader, item: Any, require_outputs: bool, default_output: str = "") -> Decision | None:
    if not isinstance(item, LDict):
        r.err("a decision must be a mapping with 'outputs' and 'cases'", item)
        return None
    allowed = {"outputs", "reason", "cases", "note_missing", "looks_ahead"} if require_outputs else {"cases", "reason"}
    r.fields(item, allowed, {"outputs", "cases"} if require_outputs else {"cases"}, "a decision")
    outputs: list[str] = []
    if require_outputs:
        raw = item.get("outputs")
        raw = [raw] if isinstance(raw, str) else raw
        # outputs: [] words a reason only (a screen that explains a flag, criteria §7.4)
        explains_only = raw == [] and item.get("reason") is not None
        if not isinstance(raw, list) or not (raw or explains_only):
            r.err("'outputs' must name one or more output columns (or [] with a 'reason' only)", item.get("outputs"), item)
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


def read_row_values(r: FieldReader, doc: LDict, rs: RuleSet) -> None:
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
            elif not scalar_ok(v):
                r.err(f"the value for '{key}' must be a number, text, true/false or null", v, value)
            else:
                out[key] = v
        return out
    if len(outputs) != 1:
        r.err(f"'then' must give a value for each output: {', '.join(outputs)}", value, at)
        return {}
    if not scalar_ok(value):
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
    if not outputs and ("then" in case or "worst" in case):
        r.err("a decision without outputs gives reasons only: its cases have 'when' and 'reason'", case)
        return None
    if outputs and ("then" in case) == ("worst" in case):
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
