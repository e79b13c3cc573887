"""The ADaM parameters of the grades (outputs.md §1): PARAMCD and PARAM of
each graded output, and the name of its grading system in tables.

A rule file declares the code, label and place of its grades' parameters
(``cdisc`` in its ``outputs``: the built-in systems give those outputs.md
fixes); any other grade gets "CRS" (its toxicity) + the first 5 letters or
digits of its system's id, and a label from its rule set's presentation
label, or its system and version when the label only names the toxicity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from carscore.assess import REFERENCE_SYSTEM
from carscore.errors import UsageError
from carscore.export.episodes import GradedOutput, graded_outputs
from carscore.ruleset import RuleSet

MAX_CODE = 8  # ADaMIG: PARAMCD at most 8 characters


@dataclass(frozen=True)
class GradeParameter:
    output: GradedOutput
    paramcd: str
    param: str

    @property
    def system_name(self) -> str:
        """The grading system as the PARAM names it: "CRS Grade (ASTCT 2019)" -> "ASTCT 2019"."""
        found = re.search(r"\(([^()]*)\)\s*$", self.param)
        return found.group(1) if found else self.param


def derived_code(output: GradedOutput) -> str:
    """outputs.md §1: "CRS" + the first 5 letters/digits of the system's id, upper-cased
    (crs_*_lee2014 -> CRSLEE20); a grade whose key names no system (crs_*, cres_*)
    is coded by its toxicity word alone."""
    toxicity = re.sub(r"[^A-Za-z0-9]", "", output.toxicity).upper()
    tail = re.sub(r"[^A-Za-z0-9]", "", output.system_suffix).upper()[:5]
    return (toxicity + tail)[:MAX_CODE]


def derived_label(output: GradedOutput) -> str:
    toxicity = output.toxicity.upper()
    if output.label.strip().upper() != toxicity:
        name = output.label.strip()
    else:
        name = f"{output.system.upper()} {output.ruleset_version.split('.')[0]}".strip()
    return f"{toxicity} Grade ({name})"


def grade_parameters(rulesets: list[RuleSet], unique_codes: bool = True) -> list[GradeParameter]:
    """The grade parameters in outputs.md's order: the reference system's grades,
    then the declared ones in their order, then the others in rule-set order.
    ``unique_codes``: two grades with one PARAMCD are a usage error (ADaM needs the codes)."""
    found = []
    for index, output in enumerate(graded_outputs(rulesets)):
        code = output.paramcd or derived_code(output)
        label = output.param or derived_label(output)
        # declared places first, in their order; the others after, in rule-set order
        place = output.param_order if output.param_order is not None else float("inf")
        rank = (0 if output.system == REFERENCE_SYSTEM else 1, place, index)
        found.append((rank, GradeParameter(output, code, label)))
    parameters = [p for _, p in sorted(found, key=lambda item: item[0])]
    seen: dict[str, str] = {}
    for p in parameters if unique_codes else []:
        if p.paramcd in seen:
            raise UsageError(
                f"the grades {seen[p.paramcd]} and {p.output.name} would both have the ADaM code {p.paramcd}: "
                "give one of their systems another id"
            )
        seen[p.paramcd] = p.output.name
    return parameters
