"""Cohort statistics over course summaries: rates with Wilson score
intervals, maximum-grade distributions, onset and duration medians.

Each course (one patient, one infusion) is one entry, as in the JSON
``patients`` list: a patient infused twice counts twice.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable
from typing import Any

import polars as pl

from carscore.presentation import COHORT_RATES

RESPONSES = ("CR", "CRi")


# the contract §2 cohort outcomes that no grade declares, in the clinic's words
# (the grades' rates are labelled from their rule sets' presentation)
OUTCOME_LABELS = {
    "orr": "Overall marrow response (CR + CRi)",
    "cr": "Complete remission (CR)",
    "mrd_negative_remission": "MRD-negative remission",
    "cns_remission": "CNS remission (CNS-2/3 at baseline)",
    "relapse": "Relapse, marrow or CNS (among responders)",
}


def wilson_interval(count: int, n: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval for a binomial proportion (Wilson EB, J Am Stat Assoc 1927)."""
    if n == 0:
        return None, None
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    p = count / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(count: int, n: int, confidence: float = 0.95) -> dict[str, Any]:
    low, high = wilson_interval(count, n, confidence)
    return {"count": count, "n": n, "rate": count / n if n else None, "ci_low": low, "ci_high": high}


def _count(condition: pl.Expr) -> pl.Expr:
    """How many courses meet a condition; unknown (null) is not met."""
    return condition.fill_null(False).sum()


def _describe(table: pl.DataFrame, values: pl.Expr) -> dict[str, Any]:
    """n, median, min and max of the known values: whole numbers as integers,
    the median of an even number of values the mean of the middle two."""
    known = [_whole(v) for v in table.select(values.drop_nulls().sort()).to_series().to_list()]
    if not known:
        return {"n": 0, "median": None, "min": None, "max": None}
    n = len(known)
    median = known[n // 2] if n % 2 else (known[n // 2 - 1] + known[n // 2]) / 2
    return {"n": n, "median": median, "min": known[0], "max": known[-1]}


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 else value


def rate_labels(grades: Iterable[Any], rates: Iterable[Any]) -> dict[str, str]:
    """Every cohort rate in the order tables show it, with its label: the
    contract's outcomes, each grade's any-grade and higher-grade rates
    (``COHORT_RATES``), then the rates rule sets declare for their summaries."""
    labels = dict(OUTCOME_LABELS)
    for view in grades:
        for name, least in COHORT_RATES:
            words = "any grade" if name == "any" else f"grade \u2265 {least:g}"
            labels[view.summary_key(name)] = f"{view.label}, {words}"
    for view in rates:
        labels[view.rate] = view.rate_label
    return labels


# the summary keys the contract's rates read
RATE_SUMMARY_KEYS = (
    "best_bm_response",
    "cns_status_baseline",
    "mrd_negative_remission",
    "cns_remission_day",
    "bm_relapse_day",
    "cns_relapse_day",
)


_MAX_GRADE = re.compile(r"^([a-z][a-z0-9]*)_max_grade(_[a-z0-9_]+)?$")


def grade_patterns_of(keys: Iterable[str]) -> list[str]:
    """Key patterns ("crs_*", "crs_*_lee2014") of the maximum grades among
    summary keys, for summaries that come without their rule sets."""
    return [f"{m.group(1)}_*{m.group(2) or ''}" for m in map(_MAX_GRADE.match, sorted(set(keys))) if m]


def cohort_statistics(
    summaries: pl.DataFrame | list[dict[str, Any]],
    confidence: float = 0.95,
    grades: list[str] | None = None,
    rates: list[Any] | None = None,
) -> dict[str, Any]:
    """Rates with Wilson intervals over the courses (one row, or one mapping,
    per course). ``grades`` are the key patterns of the graded outputs
    (presentation.OutputView.summaries, e.g. "crs_*", "crs_*_lee2014");
    without them they are found among the summary keys. Counted by polars:
    a registry's two hundred thousand courses in a fraction of a second."""
    if isinstance(summaries, pl.DataFrame):
        table = summaries
    else:  # polars cannot read the shape of no mappings: no courses is an empty table
        table = pl.from_dicts(summaries, infer_schema_length=None) if summaries else pl.DataFrame()
    # a number that is not finite is not known
    table = table.with_columns(
        pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c, t in table.schema.items() if t.is_float()
    )
    present = set(table.columns)

    def value(key: str) -> pl.Expr:
        return pl.col(key) if key in present else pl.lit(None)

    def is_true(key: str) -> pl.Expr:
        return pl.col(key) if key in present and table.schema[key] == pl.Boolean else pl.lit(False)

    counts: dict[str, pl.Expr] = {}
    patterns = grades if grades is not None else grade_patterns_of(table.columns)
    for pattern in patterns:
        grade = value(pattern.replace("*", "max_grade", 1))
        # a toxicity rate counts the courses in which that toxicity could be graded:
        # a course with no neurological data is not a course without ICANS
        counts[f"{pattern} n"] = _count(grade.is_not_null())
        for name, least in COHORT_RATES:
            counts[pattern.replace("*", name, 1)] = _count(grade >= least)
    everyone = pl.repeat(True, pl.len())
    responder = value("best_bm_response").is_in(RESPONSES)
    cns_involved = value("cns_status_baseline").is_in(["CNS-2", "CNS-3"])
    contract_rates = {
        "orr": (responder, everyone),
        "cr": (value("best_bm_response") == "CR", everyone),
        "mrd_negative_remission": (is_true("mrd_negative_remission"), everyone),
        "cns_remission": (cns_involved & value("cns_remission_day").is_not_null(), cns_involved),
        # relapse among courses that reached a marrow remission: marrow or CNS relapse
        "relapse": (responder & (value("bm_relapse_day").is_not_null() | value("cns_relapse_day").is_not_null()), responder),
    }
    for key, (numerator, denominator) in contract_rates.items():
        counts[key], counts[f"{key} n"] = _count(numerator & denominator), _count(denominator)
    # rates the rule sets declare for their summary keys (presentation.OutputView.rate),
    # over the courses where the value is known
    for view in rates or []:
        met = (
            is_true(view.name)
            if view.kind == "flag"
            else value(view.name) >= view.at_least
            if view.at_least is not None
            else None
        )
        counts[view.rate] = _count(met if met is not None else pl.lit(False))
        counts[f"{view.rate} n"] = _count(value(view.name).is_not_null())
    counted = table.select(**counts).row(0, named=True) if counts else {}

    out: dict[str, Any] = {"n_patients": table.height, "confidence": confidence}
    for pattern in patterns:
        key, n = pattern.replace("*", "max_grade", 1), counted[f"{pattern} n"]
        for name, _least in COHORT_RATES:
            rate_key = pattern.replace("*", name, 1)
            out[rate_key] = rate(counted[rate_key], n, confidence)
        out[pattern.replace("*", "grades", 1)] = _distribution(table, value(key))
        onset_key, days_key = pattern.replace("*", "onset_day", 1), pattern.replace("*", "days", 1)
        onset, days = value(onset_key), value(days_key)
        out[onset_key] = _describe(table, onset)
        # a duration of 0 days is no episode
        out[days_key] = _describe(table, pl.when(onset.is_not_null() & (days != 0)).then(days))
    for key in contract_rates:
        out[key] = rate(counted[key], counted[f"{key} n"], confidence)
    for view in rates or []:
        out[view.rate] = rate(counted[view.rate], counted[f"{view.rate} n"], confidence)
    return out


def _distribution(table: pl.DataFrame, grade: pl.Expr) -> dict[str, int]:
    """Courses by maximum grade (0 to 5, and any other grade given); not graded: not counted."""
    counts = {str(g): 0 for g in range(6)}
    found = table.select(grade.drop_nulls().cast(pl.Int64).alias("g")).group_by("g").len().sort("g")
    for g, n in found.iter_rows():
        counts[str(g)] = n
    return counts


def cohort_of(assessment: Any, confidence: float = 0.95) -> dict[str, Any]:
    """The cohort statistics of an assessment, with a rate for every grade its rule sets declare."""
    from carscore.presentation import grade_views, rate_views

    rulesets = assessment.rulesets
    patterns = [v.summaries for v in grade_views(rulesets)]
    rates = rate_views(rulesets)
    # only the keys the statistics read
    keys = [p.replace("*", word, 1) for p in patterns for word in ("max_grade", "onset_day", "days")]
    keys += [*RATE_SUMMARY_KEYS, *(v.name for v in rates)]
    known = set(assessment.summaries.columns)
    table = assessment.summaries.select(k for k in dict.fromkeys(keys) if k in known)
    return cohort_statistics(table, confidence, patterns, rates)
