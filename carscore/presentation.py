"""How a rule set's outputs are shown and summarised, read from its ``outputs:``.

A rule set declares, for each day output it decides, what kind of value it is
(a grade 0-5, a class, a yes/no flag) and its label. A grade may ask for the
standard grade summaries by a key pattern: ``summaries: "crs_*_lee2014"``
gives ``crs_max_grade_lee2014``, ``crs_onset_day_lee2014``,
``crs_last_day_lee2014`` and ``crs_days_lee2014`` (contract §5), and the
cohort gives ``crs_any_lee2014``, ``crs_grade3plus_lee2014`` and
``crs_grades_lee2014`` from them. The command line renders tables, summary
panels and cohort rates from these declarations and names no rule set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from carscore.expr import parse
from carscore.rulefile import Expression, FieldReader, Source
from carscore.yamlsafe import LDict

KINDS = ("grade", "class", "flag", "day", "number")
# the standard summaries of a grade, by the word that replaces "*" in the pattern
GRADE_SUMMARIES = ("max_grade", "onset_day", "last_day", "days")
# the cohort figures of a grade: rates over the courses it could grade, and the distribution
COHORT_RATES = (("any", 1), ("grade3plus", 3))


@dataclass(frozen=True)
class OutputView:
    name: str  # the day output key
    kind: str  # grade | class | flag
    label: str  # column heading and name in summaries
    summaries: str = ""  # key pattern with "*" (grades), e.g. "crs_*_lee2014"
    counted_from: str | float = 0  # summaries count the days from this day (a parameter name or a number)
    table: bool = True  # shown as a column of the day table
    fallback: str = ""  # another output shown in its place when this one is blank
    quiet: tuple[str, ...] = ()  # reason openings the day table leaves out: the grade already says it
    # grades of one family (crs, neuro) grade the same toxicity: `carscore compare` sets them side by side
    family: str = ""
    note: str = ""  # said beside the value (what the reader must know to use it)
    of_course: bool = False  # a summary key: a line of the course summary, not a day column
    # a summary key's cohort rate: its key, and the grade it counts from (a flag counts true)
    rate: str = ""
    at_least: float | None = None
    words: tuple[str, str] = ("yes", "no")  # how a flag's true and false are written (MRD: neg, pos)
    # its ADaM parameter (outputs.md §1): code (at most 8 characters) and label; else derived from the id
    paramcd: str = ""
    param: str = ""
    param_order: float | None = None  # its place among the parameters (outputs.md §1 table order)

    def value_in(self, row: dict[str, Any]) -> Any:
        """This output's value in a day's mapping, or its fallback output's when it is blank
        (the CNS substatus falls back to the status)."""
        value = row.get(self.name)
        return row.get(self.fallback) if value is None and self.fallback else value

    def counts(self, value: Any) -> bool:
        if self.kind == "flag":
            return value is True
        return value is not None and self.at_least is not None and value >= self.at_least

    @property
    def rate_label(self) -> str:
        return f"{self.label}, grade ≥ {self.at_least:g}" if self.kind != "flag" and self.at_least is not None else self.label

    def summary_key(self, word: str) -> str:
        return self.summaries.replace("*", word, 1)


def read_outputs(r: FieldReader, doc: LDict) -> dict[str, OutputView]:
    specs = r.mapping(doc["outputs"], "'outputs'", doc)
    views: dict[str, OutputView] = {}
    for name, spec in (specs or {}).items():
        if not r.identifier(name, spec, "output name"):
            continue
        if not isinstance(spec, LDict):
            r.key_err(specs, name, f"output '{name}' needs 'kind' and 'label'")
            continue
        what = f"output '{name}'"
        allowed = {
            "kind",
            "label",
            "summaries",
            "counted_from",
            "table",
            "fallback",
            "quiet",
            "family",
            "note",
            "rate",
            "at_least",
            "words",
            "cdisc",
        }
        r.fields(spec, allowed, {"kind", "label"}, what)
        kind = r.text(spec, "kind", what)
        if kind and kind not in KINDS:
            r.err(f"{what}: kind must be one of {', '.join(KINDS)}", spec.get("kind"), spec)
        pattern = r.text(spec, "summaries", what, required=False)
        if pattern and (kind != "grade" or pattern.count("*") != 1 or not _is_name(pattern.replace("*", "x"))):
            r.err(
                f"{what}: 'summaries' is a key pattern with one '*' (e.g. crs_*_lee2014), for grades only",
                spec.get("summaries"),
                spec,
            )
        counted_from = spec.get("counted_from", 0)
        if isinstance(counted_from, bool) or not isinstance(counted_from, (int, float, str)):
            r.err(f"{what}: 'counted_from' is a day number or a parameter name", counted_from, spec)
            counted_from = 0
        table = spec.get("table", True)
        if not isinstance(table, bool):
            r.err(f"{what}: 'table' must be true or false", table, spec)
        quiet = spec.get("quiet", [])
        if not isinstance(quiet, list) or not all(isinstance(q, str) for q in quiet):
            r.err(f"{what}: 'quiet' is a list of reason openings", quiet, spec)
            quiet = []
        rate, at_least = _rate(r, spec, what, kind)
        views[name] = OutputView(
            name=name,
            kind=kind,
            label=r.text(spec, "label", what),
            summaries=pattern,
            counted_from=counted_from,
            table=table is not False,
            fallback=r.text(spec, "fallback", what, required=False),
            quiet=tuple(quiet),
            family=r.text(spec, "family", what, required=False),
            note=r.text(spec, "note", what, required=False),
            rate=rate,
            at_least=at_least,
            words=_words(r, spec, what),
            **_cdisc(r, spec, what),
        )
    return views


def _cdisc(r: FieldReader, spec: LDict, what: str) -> dict[str, Any]:
    """``cdisc: {paramcd: CRSLEE, param: "CRS Grade (Lee 2014)"}``: the ADaM
    parameter of a grade (ADaMIG: PARAMCD at most 8 characters, a letter first,
    letters and digits)."""
    given = spec.get("cdisc")
    if given is None:
        return {}
    if not isinstance(given, LDict) or set(given) - {"paramcd", "param", "order"} or not {"paramcd", "param"} <= set(given):
        r.err(f"{what}: 'cdisc' has paramcd, param and optionally order", given, spec)
        return {}
    order = given.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, (int, float))):
        r.err(f"{what}: cdisc order is a number (the parameter's place in the dataset)", order, given)
        return {}
    code, label = given["paramcd"], given["param"]
    if not isinstance(code, str) or not re.fullmatch(r"[A-Z][A-Z0-9]{0,7}", code):
        r.err(f"{what}: cdisc paramcd is at most 8 capital letters and digits, a letter first", code, given)
        return {}
    if not isinstance(label, str) or not label.strip():
        r.err(f"{what}: cdisc param is the parameter's label", label, given)
        return {}
    return {"paramcd": code, "param": label.strip(), "param_order": order}


def _rate(r: FieldReader, spec: LDict, what: str, kind: str) -> tuple[str, float | None]:
    """A cohort rate over the courses where the value is known: of a grade from
    ``at_least`` up, of a flag where it is true."""
    rate = r.text(spec, "rate", what, required=False)
    at_least = spec.get("at_least")
    if rate and not _is_name(rate):
        r.err(f"{what}: 'rate' names the cohort key (lower case, digits and _)", spec.get("rate"), spec)
    if rate and kind == "grade" and (isinstance(at_least, bool) or not isinstance(at_least, (int, float))):
        r.err(f"{what}: a grade's rate needs 'at_least' (the lowest grade it counts)", spec, spec)
        at_least = None
    if rate and kind not in ("grade", "flag"):
        r.err(f"{what}: cohort rates are of grades or flags", spec.get("rate"), spec)
    return rate, float(at_least) if isinstance(at_least, (int, float)) and not isinstance(at_least, bool) else None


def _words(r: FieldReader, spec: LDict, what: str) -> tuple[str, str]:
    words = spec.get("words", ["yes", "no"])
    if not (isinstance(words, list) and len(words) == 2 and all(isinstance(w, str) for w in words)):
        r.err(f"{what}: 'words' are two: how true and false are written (e.g. [neg, pos])", words, spec)
        return ("yes", "no")
    return (str(words[0]), str(words[1]))


def _is_name(text: str) -> bool:
    return text.replace("_", "a").isalnum() and text[:1].isalpha() and text == text.lower()


def standard_summaries(view: OutputView, file: str, line: int, col: int) -> dict[str, Expression]:
    """The standard grade summaries, written in the rule language so that they
    compile, order and trace like any summary the rule set writes itself."""
    g, start = view.name, view.counted_from
    since = f"day >= {start}"
    texts = {
        "max_grade": f"max({g}, {since})",
        "onset_day": f"first_day({g} >= 1 and {since})",
        "last_day": f"last_day({g} >= 1 and {since})",
        "days": f"if(recorded({view.summary_key('max_grade')}), count({g} >= 1 and {since}), null)",
    }
    return {
        view.summary_key(word): Expression(Source(texts[word], file, line, col), parse(texts[word])) for word in GRADE_SUMMARIES
    }


def grade_views(rulesets: list[Any]) -> list[OutputView]:
    """Every graded day output with standard summaries, in rule-set order."""
    return [v for rs in rulesets for v in rs.presentation.values() if v.kind == "grade" and v.summaries and not v.of_course]


def rate_views(rulesets: list[Any]) -> list[OutputView]:
    """Every summary key with a cohort rate, in rule-set order."""
    return [v for rs in rulesets for v in rs.presentation.values() if v.of_course and v.rate]


def views(rulesets: list[Any]) -> dict[str, OutputView]:
    return {name: v for rs in rulesets for name, v in rs.presentation.items()}


@dataclass(frozen=True)
class Shown:
    """What a display shows of the rule sets in use, in rule-set order."""

    columns: tuple[OutputView, ...]  # day table columns
    grades: tuple[OutputView, ...]  # grades with standard summaries
    course_lines: tuple[OutputView, ...]  # summary keys shown as lines of the course summary
    reason_labels: dict[str, str]  # reason key -> label of the output it explains
    graded_reasons: dict[str, OutputView]  # reason key -> the grade it explains


def shown(rulesets: list[Any]) -> Shown:
    columns, labels, graded, lines = [], {}, {}, []
    for rs in rulesets:
        for d in rs.decisions:
            if d.reason_key is None:
                continue
            first = rs.presentation.get(d.outputs[0]) if d.outputs else None
            labels[d.reason_key] = first.label if first else d.reason_key
            if first is not None and first.kind == "grade":
                graded[d.reason_key] = first
        columns += [v for v in rs.presentation.values() if v.table and not v.of_course]
        lines += [v for v in rs.presentation.values() if v.of_course]
    return Shown(tuple(columns), tuple(grade_views(rulesets)), tuple(lines), labels, graded)


def day_ranges(days: list[int]) -> str:
    """Days 3, 4, 5, 9 as "3–5, 9"."""
    if not days:
        return ""
    parts, start, prev = [], days[0], days[0]
    for d in [*days[1:], None]:
        if d is not None and d == prev + 1:
            prev = d
            continue
        parts.append(str(start) if start == prev else f"{start}–{prev}")
        if d is not None:
            start = prev = d
    return ", ".join(parts)
