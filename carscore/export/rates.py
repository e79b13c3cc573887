"""The cohort's rates as a table (``cohort --format csv --rates``): one row per
rate of the JSON ``cohort`` block (key, label, count, n, rate, ci_low,
ci_high), then one row per grade of each maximum-grade distribution (key
``<distribution>_<grade>``, e.g. ``crs_grades_3``: count = courses with that
maximum grade, n = courses with a known maximum grade, the share with its
Wilson interval at the same confidence)."""

from __future__ import annotations

from typing import Any

import polars as pl

from carscore.cohort import rate, rate_labels
from carscore.presentation import grade_views, rate_views
from carscore.ruleset import RuleSet

COLUMNS = ["key", "label", "count", "n", "rate", "ci_low", "ci_high"]


def _labels(rulesets: list[RuleSet]) -> dict[str, str]:
    labels = rate_labels(grade_views(rulesets), rate_views(rulesets))
    labels |= {view.summary_key("grades"): f"{view.label}, maximum grade" for view in grade_views(rulesets)}
    return labels


def _is_rate(value: Any) -> bool:
    return isinstance(value, dict) and {"count", "n", "rate", "ci_low", "ci_high"} <= set(value)


def _is_distribution(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.isdigit() for k in value)


def rates_table(stats: dict[str, Any], rulesets: list[RuleSet]) -> pl.DataFrame:
    """The rates of a cohort block (``cohort_of``), then its grade distributions."""
    labels = _labels(rulesets)
    confidence = stats.get("confidence", 0.95)
    rows = [
        {"key": key, "label": labels.get(key, key), **{c: value[c] for c in COLUMNS[2:]}}
        for key, value in stats.items()
        if _is_rate(value)
    ]
    for key, value in stats.items():
        if not _is_distribution(value):
            continue
        graded = sum(int(v) for v in value.values())
        for grade, count in sorted(value.items(), key=lambda item: int(item[0])):
            share = rate(int(count), graded, confidence)
            label = f"{labels.get(key, key)} {grade}"
            rows.append({"key": f"{key}_{grade}", "label": label, **{c: share[c] for c in COLUMNS[2:]}})
    schema = {
        "key": pl.String,
        "label": pl.String,
        "count": pl.Int64,
        "n": pl.Int64,
        "rate": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)
