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

RESPONSES = ("CR", "CRi")


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
def _rate_definitions() -> dict[str, tuple[Callable[[dict], bool], Callable[[dict], bool]]]:
    def grade_at_least(key: str, g: int) -> Callable[[dict], bool]:
        return lambda s: s.get(key) is not None and s[key] >= g

    everyone: Callable[[dict], bool] = lambda s: True  # noqa: E731
    responder: Callable[[dict], bool] = lambda s: s.get("best_bm_response") in RESPONSES  # noqa: E731
    cns_involved: Callable[[dict], bool] = lambda s: s.get("cns_status_baseline") in ("CNS-2", "CNS-3")  # noqa: E731
    # a toxicity rate counts the courses in which that toxicity could be graded:
    # a course with no neurological data is not a course without ICANS
    crs_graded: Callable[[dict], bool] = lambda s: s.get("crs_max_grade") is not None  # noqa: E731
    icans_graded: Callable[[dict], bool] = lambda s: s.get("icans_max_grade") is not None  # noqa: E731
    return {
        "crs_any": (grade_at_least("crs_max_grade", 1), crs_graded),
        "crs_grade3plus": (grade_at_least("crs_max_grade", 3), crs_graded),
        "icans_any": (grade_at_least("icans_max_grade", 1), icans_graded),
        "icans_grade3plus": (grade_at_least("icans_max_grade", 3), icans_graded),
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


RATE_KEYS = list(_rate_definitions())


_SYSTEM_MAX_GRADE = re.compile(r"^([a-z]+)_max_grade(_[a-z0-9_]+)?$")


def _system_grades(summaries: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Summary keys of other systems' maximum grades: key -> (toxicity, _<system> or '')."""
    keys = {k for s in summaries for k in s} - {"crs_max_grade", "icans_max_grade"}
    found = {}
    for key in sorted(keys):
        m = _SYSTEM_MAX_GRADE.match(key)
        if m:
            found[key] = (m.group(1), m.group(2) or "")
    return found


def cohort_statistics(summaries: list[dict[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    out: dict[str, Any] = {"n_patients": len(summaries), "confidence": confidence}
    for key, (numerator, denominator) in _rate_definitions().items():
        pool = [s for s in summaries if denominator(s)]
        out[key] = rate(sum(1 for s in pool if numerator(s)), len(pool), confidence)
    out["crs_grades"] = _distribution(s.get("crs_max_grade") for s in summaries)
    out["icans_grades"] = _distribution(s.get("icans_max_grade") for s in summaries)
    for key, (toxicity, system) in _system_grades(summaries).items():
        # every other grading system's course maximum (contract §5): crs_max_grade_<id> gives
        # crs_any_<id>, crs_grade3plus_<id> and crs_grades_<id>, over the courses it could grade
        graded = [s for s in summaries if s.get(key) is not None]
        for name, least in (("any", 1), ("grade3plus", 3)):
            out[f"{toxicity}_{name}{system}"] = rate(sum(1 for s in graded if s[key] >= least), len(graded), confidence)
        out[f"{toxicity}_grades{system}"] = _distribution(s.get(key) for s in summaries)
    for tox in ("crs", "icans"):
        out[f"{tox}_onset_day"] = _describe([s[f"{tox}_onset_day"] for s in summaries if s.get(f"{tox}_onset_day") is not None])
        out[f"{tox}_days"] = _describe(
            [s[f"{tox}_days"] for s in summaries if s.get(f"{tox}_days") and s.get(f"{tox}_onset_day") is not None]
        )
    return out
