"""Concordance of grading systems over a cohort (criteria §6.10, contract §5):
each course's maximum grade in every system, the share of courses on which
all agree, and each system against the reference (concordant, lower,
higher, and the cross-table of maximum grades), with Wilson intervals."""

from __future__ import annotations

from typing import Any

from carscore.cohort import rate

REFERENCE = "astct"


def max_grade_key(system: str, toxicity: str = "crs") -> str:
    """astct: crs_max_grade; another system: crs_max_grade_<id>; cres: cres_max_grade."""
    if system == REFERENCE:
        return f"{toxicity}_max_grade"
    if system == "cres":
        return "cres_max_grade"
    return f"{toxicity}_max_grade_{system}"


def compare(
    summaries: list[dict[str, Any]],
    systems: list[str],
    reference: str = REFERENCE,
    toxicity: str = "crs",
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The "comparison" block: ``systems`` includes the reference."""
    keys = {s: max_grade_key(s, toxicity) for s in systems}
    compared, excluded = [], []
    for s in summaries:
        grades = {system: s.get(key) for system, key in keys.items()}
        if any(g is None for g in grades.values()):
            excluded.append(f"{s.get('patient_id')} (infusion {s.get('infusion')})")
        else:
            compared.append(grades)
    n = len(compared)

    def share(hits: int, total: int) -> dict[str, Any]:
        return rate(hits, total, confidence)

    same = sum(1 for g in compared if len(set(g.values())) == 1)
    diagnosis = sum(1 for g in compared if all(v >= 1 for v in g.values()) or all(v == 0 for v in g.values()))
    everywhere = sum(1 for g in compared if all(v >= 1 for v in g.values()))
    versus: dict[str, Any] = {}
    for system in systems:
        if system == reference:
            continue
        # shares over the courses with CRS in either system (both 0 is no concordant CRS)
        with_crs = [g for g in compared if g[reference] >= 1 or g[system] >= 1]
        m = len(with_crs)
        table: dict[str, dict[str, int]] = {str(r): {str(c): 0 for c in range(6)} for r in range(6)}
        for g in compared:
            table[str(int(g[reference]))][str(int(g[system]))] += 1
        versus[system] = {
            "n": m,
            "concordant": share(sum(1 for g in with_crs if g[system] == g[reference]), m),
            "lower": share(sum(1 for g in with_crs if g[system] < g[reference]), m),
            "higher": share(sum(1 for g in with_crs if g[system] > g[reference]), m),
            "cross_table": table,
        }
    return {
        "systems": list(systems),
        "reference": reference,
        "n_courses": n,
        "n_excluded": len(excluded),
        "excluded": excluded,
        "same_max_grade": share(same, n),
        "same_crs_diagnosis": share(diagnosis, n),
        "crs_in_every_system": share(everywhere, n),
        "versus_reference": versus,
    }


def comparison_rows(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison as long CSV rows: one per system and measure."""
    rows = []
    for measure in ("same_max_grade", "same_crs_diagnosis", "crs_in_every_system"):
        rows.append({"system": "all", "measure": measure, **comparison[measure]})
    for system, block in comparison["versus_reference"].items():
        for measure in ("concordant", "lower", "higher"):
            rows.append({"system": system, "measure": f"{measure}_vs_{comparison['reference']}", **block[measure]})
    return rows
