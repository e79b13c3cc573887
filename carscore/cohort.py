"""Cohort statistics over course summaries: rates with Wilson score
intervals, maximum-grade distributions, onset and duration medians.

Each course (one patient, one infusion) is one entry, as in the JSON
``patients`` list: a patient infused twice counts twice.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable
from typing import Any

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


def _distribution(values: Iterable[Any]) -> dict[str, int]:
    counts = {str(g): 0 for g in range(6)}
    for v in values:
        if v is not None:
            counts[str(int(v))] += 1
    return counts


def _describe(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {"n": len(values), "median": statistics.median(values), "min": min(values), "max": max(values)}


# Each cohort rate: (numerator condition, denominator condition), over course summaries.
# Grade rates (any grade, grade >= 3) come from the rule sets' grade outputs instead.
def _rate_definitions() -> dict[str, tuple[Callable[[dict], bool], Callable[[dict], bool]]]:
    everyone: Callable[[dict], bool] = lambda s: True  # noqa: E731
    responder: Callable[[dict], bool] = lambda s: s.get("best_bm_response") in RESPONSES  # noqa: E731
    cns_involved: Callable[[dict], bool] = lambda s: s.get("cns_status_baseline") in ("CNS-2", "CNS-3")  # noqa: E731
    return {
        "orr": (responder, everyone),
        "cr": (lambda s: s.get("best_bm_response") == "CR", everyone),
        "mrd_negative_remission": (lambda s: s.get("mrd_negative_remission") is True, everyone),
        "cns_remission": (lambda s: s.get("cns_remission_day") is not None, cns_involved),
        # relapse among courses that reached a marrow remission: marrow or CNS relapse
        "relapse": (
            lambda s: s.get("bm_relapse_day") is not None or s.get("cns_relapse_day") is not None,
            responder,
        ),
    }


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


RATE_KEYS = list(_rate_definitions())
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


def grade_patterns_of(summaries: list[dict[str, Any]]) -> list[str]:
    """Key patterns ("crs_*", "crs_*_lee2014") of the maximum grades among the
    summary keys, for summaries that come without their rule sets."""
    keys = sorted({k for s in summaries for k in s})
    return [f"{m.group(1)}_*{m.group(2) or ''}" for m in map(_MAX_GRADE.match, keys) if m]


def cohort_statistics(
    summaries: list[dict[str, Any]],
    confidence: float = 0.95,
    grades: list[str] | None = None,
    rates: list[Any] | None = None,
) -> dict[str, Any]:
    """Rates with Wilson intervals over the courses. ``grades`` are the key
    patterns of the graded outputs (presentation.OutputView.summaries, e.g.
    "crs_*", "crs_*_lee2014"); without them they are found among the summary keys."""
    out: dict[str, Any] = {"n_patients": len(summaries), "confidence": confidence}
    for pattern in grades if grades is not None else grade_patterns_of(summaries):
        key = pattern.replace("*", "max_grade", 1)
        # a toxicity rate counts the courses in which that toxicity could be graded:
        # a course with no neurological data is not a course without ICANS
        graded = [s for s in summaries if s.get(key) is not None]
        for name, least in COHORT_RATES:
            out[pattern.replace("*", name, 1)] = rate(sum(1 for s in graded if s[key] >= least), len(graded), confidence)
        out[pattern.replace("*", "grades", 1)] = _distribution(s.get(key) for s in summaries)
        onset_key, days_key = pattern.replace("*", "onset_day", 1), pattern.replace("*", "days", 1)
        out[onset_key] = _describe([s[onset_key] for s in summaries if s.get(onset_key) is not None])
        out[days_key] = _describe([s[days_key] for s in summaries if s.get(days_key) and s.get(onset_key) is not None])
    for key, (numerator, denominator) in _rate_definitions().items():
        pool = [s for s in summaries if denominator(s)]
        out[key] = rate(sum(1 for s in pool if numerator(s)), len(pool), confidence)
    # rates the rule sets declare for their summary keys (presentation.OutputView.rate),
    # over the courses where the value is known
    for view in rates or []:
        known = [s for s in summaries if s.get(view.name) is not None]
        out[view.rate] = rate(sum(1 for s in known if view.counts(s[view.name])), len(known), confidence)
    return out


def cohort_of(assessment: Any, confidence: float = 0.95) -> dict[str, Any]:
    """The cohort statistics of an assessment, with a rate for every grade its rule sets declare."""
    from carscore.presentation import grade_views, rate_views
    from carscore.report import summary_rows

    rulesets = assessment.rulesets
    patterns = [v.summaries for v in grade_views(rulesets)]
    rates = rate_views(rulesets)
    # only the keys the statistics read
    keys = [p.replace("*", word, 1) for p in patterns for word in ("max_grade", "onset_day", "days")]
    keys += [*RATE_SUMMARY_KEYS, *(v.name for v in rates)]
    known = set(assessment.summaries.columns)
    rows = summary_rows(assessment, [k for k in dict.fromkeys(keys) if k in known])
    return cohort_statistics(rows, confidence, patterns, rates)
