"""Libraries: definitions several rule sets share, each graded with its own copy.

A rule set that says ``includes: [crs_findings]`` grades with the library's
parameters, inputs, row values and ``let`` values as if it had written them
itself; its own parameters of the same name replace the library's, so that
every system keeps its own thresholds (criteria §6.12) while each finding is
defined once (criteria §6.0.3). Libraries are never graded by themselves.
"""

from __future__ import annotations

from dataclasses import replace

from carscore.errors import RuleError, RuleErrors
from carscore.rulemodel import value_kind
from carscore.ruleset import RuleSet


def resolve_includes(rulesets: list[RuleSet]) -> list[RuleSet]:
    """The rule sets to grade: each with the definitions of the libraries it
    includes merged in, and the libraries themselves left out."""
    libraries = {rs.id: rs for rs in rulesets if rs.library}
    if not libraries and not any(rs.includes for rs in rulesets):
        return rulesets
    errors: list[RuleError] = []
    out = []
    for rs in rulesets:
        if rs.library:
            continue
        merged = rs
        for name in rs.includes:
            library = libraries.get(name)
            if library is None:
                known = ", ".join(sorted(libraries)) or "none loaded"
                errors.append(
                    RuleError(
                        f"rule set '{rs.id}' includes '{name}', which is not a library in use (libraries: {known})", rs.file, 1, 1
                    )
                )
                continue
            merged = _merge(merged, library, errors)
        out.append(merged)
    if errors:
        raise RuleErrors(errors)
    return out


def _merge(rs: RuleSet, library: RuleSet, errors: list[RuleError]) -> RuleSet:
    for name, own in rs.parameters.items():
        theirs = library.parameters.get(name)
        if theirs is not None and value_kind(own.value) != value_kind(theirs.value):
            errors.append(
                RuleError(
                    f"parameter '{name}' replaces the one of library '{library.id}' ({library.file}), "
                    f"so it must be a {value_kind(theirs.value)} like it",
                    rs.file,
                )
            )
    own_names = {**rs.row_values, **rs.lets}
    for name in [*library.row_values, *library.lets]:
        if name in own_names:
            errors.append(
                RuleError(
                    f"'{name}' is defined both here and in the included library '{library.id}' ({library.file}): "
                    "rename one, or change the library's parameters instead",
                    rs.file,
                )
            )
    return replace(
        rs,
        parameters={**library.parameters, **rs.parameters},
        inputs={**library.inputs, **rs.inputs},
        input_positions={**library.input_positions, **rs.input_positions},
        row_values={**library.row_values, **rs.row_values},
        lets={**library.lets, **rs.lets},
    )
