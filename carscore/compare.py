"""Concordance of grading systems over a cohort (criteria §6.10, contract §5):
each course's maximum grade in every system, the share of courses on which
all agree, and each system against the reference (concordant, lower,
higher, and the cross-table of maximum grades), with Wilson intervals."""

from __future__ import annotations

from typing import Any

from carscore.cohort import rate

REFERENCE = "astct"


def max_grade_key(system: str, toxicity: str = "crs") -> str:
    """The contract's naming (contract §5): the reference's crs_max_grade, another system's crs_max_grade_<id>."""
    if system == REFERENCE:
        return f"{toxicity}_max_grade"
    return f"{toxicity}_max_grade_{system}"


def family_keys(rulesets: list[Any], systems: list[str]) -> dict[str, dict[str, str]]:
    """Per family of grades (crs, neuro), each selected system's maximum-grade
    summary key, from the rule sets' output declarations."""
    from carscore.presentation import grade_views

    out: dict[str, dict[str, str]] = {}
    for rs in rulesets:
        if rs.system not in systems:
            continue
        for view in grade_views([rs]):
            if view.family:
                out.setdefault(view.family, {})[rs.system] = view.summary_key("max_grade")
    return out


def block_family(name: str) -> str:
    """The family a comparison block compares: "" for CRS ("comparison"), else its
    name's suffix ("comparison_neuro" -> "neuro")."""
    return name.removeprefix("comparison").lstrip("_")


def comparisons(
    summaries: list[dict[str, Any]], rulesets: list[Any], systems: list[str], reference: str = REFERENCE, confidence: float = 0.95
) -> dict[str, Any]:
    """Every comparison block: "comparison" for CRS, "comparison_<family>" for
    each other family graded by the reference and at least one other system
    (criteria §6.10: ICANS against CRES as "comparison_neuro")."""
    blocks: dict[str, Any] = {}
    for family, keys in family_keys(rulesets, systems).items():
        if reference not in keys or len(keys) < 2:
            continue
        ordered = [reference, *(s for s in systems if s in keys and s != reference)]
        name = "comparison" if family == "crs" else f"comparison_{family}"
        blocks[name] = compare(summaries, ordered, reference, confidence=confidence, keys=keys)
    return blocks


def compare(
    summaries: list[dict[str, Any]],
    systems: list[str],
    reference: str = REFERENCE,
    toxicity: str = "crs",
    confidence: float = 0.95,
    keys: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One comparison block: ``systems`` includes the reference; ``keys`` gives
    each system's maximum-grade summary key (by default the contract's naming)."""
    keys = {s: (keys or {}).get(s) or max_grade_key(s, toxicity) for s in systems}
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


def comparison_rows(comparison: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """The comparison as long CSV rows: one per system and measure (``prefix``
    names another family's block, e.g. "neuro_")."""
    rows = []
    for measure in ("same_max_grade", "same_crs_diagnosis", "crs_in_every_system"):
        rows.append({"system": "all", "measure": prefix + measure, **comparison[measure]})
    for system, block in comparison["versus_reference"].items():
        for measure in ("concordant", "lower", "higher"):
            rows.append({"system": system, "measure": f"{prefix}{measure}_vs_{comparison['reference']}", **block[measure]})
    return rows
