"""Header names to contract columns: which header cell of a patient file is
read as which column, which are left out, and which stop the file.

A header names a contract column when it equals the column name after
folding case, surrounding spaces, and runs of inner spaces, hyphens and
underscores to one ``_`` (``Temp C`` and ``TEMP-C`` are ``temp_c``). Anything
else is either *far* from every column (dropped, with a note), or *near* one
(within edit distance 2 of a column name, 1 when either name has four
letters or fewer so that ``site`` is not taken for ``time``; a common
clinical alias such as ``temperature`` or ``mrn``; or a column name with a
unit suffix such as ``ferritin_ng_ml``). A near header is never read as the column it resembles:
it is a problem naming the header and its likely meaning, and the file is
not read, unless the caller maps it (``column_map``) or asks to leave unknown
columns out (``ignore_unknown``, a note then lists them). A header that says
degrees Fahrenheit is never read as ``temp_c``, even when mapped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from carscore.contract import Contract
from carscore.errors import InputProblem, UsageError

# A file without this column is not a patient file at all.
DAY = "day"


def fold(name: str) -> str:
    """A header as carscore compares it: case, surrounding spaces and runs of
    inner spaces, hyphens and underscores folded (``Temp C`` -> ``temp_c``)."""
    return re.sub(r"[\s\-_]+", "_", name.strip().strip("\ufeff").strip().lower())


def _loose(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_ALIAS_TABLE = """
patient_id: patient patientid patientno patientnumber patientnr pt ptid mrn subject subjectid usubjid caseid pid
infusion: infusionno infusionnumber infusionnum infusionnr infusionn inf infno infusionid
day: daynumber dayno daynr studyday daypostinfusion dayspostinfusion dayssinceinfusion daysinceinfusion
day: dayfrominfusion daysfrominfusion postinfusionday
time: clocktime assessmenttime timeofday
age_years: age ageyrs agey ageatinfusion
temp_c: temp temperature tempmax tmax maxtemp maxtemperature temperaturemax bodytemp bodytemperature
temp_c: tempcelsius temperaturec temperaturecelsius tempdegc
hypotension: hypotensive lowbp
sbp: systolic systolicbp sysbp bpsystolic systolicpressure sbpmin minsbp
vasopressors: vasopressor pressor pressors nvasopressors numvasopressors vasopressorcount numberofvasopressors
o2_device: o2 oxygen o2delivery oxygendevice oxygendelivery o2support respiratorysupport
o2_flow_lpm: o2flow oxygenflow flowlpm o2lpm o2lmin o2flowrate
fio2_pct: fio2 fio2percent
antipyretics: antipyretic paracetamol acetaminophen
tocilizumab: toci tocilizumb tcz actemra antiil6
corticosteroids: steroids steroid corticosteroid dexamethasone dex methylprednisolone
other_anticytokine: anakinra siltuximab anticytokine
ice_score: ice icetotal icescores icepoints
capd_score: capd capdtotal
consciousness: loc levelofconsciousness consciousnesslevel consciouslevel
seizure: seizures
cerebral_edema: cerebraloedema edema oedema
il6: interleukin6
crp: creactiveprotein
wbc: leukocytes whitecells whitebloodcells whitecellcount
anc: neutrophils absoluteneutrophilcount neut neutrophilcount
platelets: plt plts platelet plateletcount
hemoglobin: hb hgb haemoglobin
fibrinogen: fib
alt_u_l: alt
ast_u_l: ast
ldh_u_l: ldh
bm_blasts_pct: bmblasts marrowblasts blasts
bm_mrd_pct: mrd bmmrd
pb_blasts_pct: pbblasts peripheralblasts blasts
car_copies: carcopies cartcopies transgenecopies
b_cells_pct: bcells cd19 cd19pct
"""


def _aliases(table: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for row in table.strip().splitlines():
        column, spellings = row.split(":")
        for spelling in spellings.split():
            out[spelling] = (*out.get(spelling, ()), column.strip())
    return out


# Spellings met in clinical exports, loosely folded (letters and digits only),
# with the contract columns they probably mean. Suggestions only: a header
# found here is an error until the user maps it. Targets missing from the
# contract are skipped.
_ALIASES = _aliases(_ALIAS_TABLE)

# Unit words after a column name (``ferritin_ng_ml``, ``tocilizumab_mg``).
_UNIT_WORDS = set(
    "mg g l ml dl ul ng pg ug mcg u iu mmhg mmol umol pct percent x10 x10e9 x10e12 10e9 10e12 9 12 lpm min kg c per "
    "total max value result count dose".split()
)
_FAHRENHEIT = re.compile(r"fahrenheit|°_?f\b|(temp|temperature|tmax|fever)[a-z_]*?_?\(?(deg_?)?f\)?$|(^|_)t_?\(?°?f\)?$")


def _is_fahrenheit(folded: str) -> bool:
    return bool(_FAHRENHEIT.search(folded))


def _distance(a: str, b: str, limit: int) -> int:
    """Edit distance with transpositions (optimal string alignment), cut off
    above `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def suggestions(header: str, contract: Contract) -> list[str]:
    """Contract columns a header that is not one probably means, most likely
    first; empty when it is far from all of them."""
    folded = fold(header)
    if not folded or folded in contract.columns:
        return []
    loose = _loose(folded)
    found = [c for c in _ALIASES.get(loose, ()) if c in contract.columns]
    found += [c for c in contract.columns if _loose(c) == loose and c not in found]
    for c in contract.columns:
        rest = folded[len(c) + 1 :] if folded.startswith(c + "_") else None
        if rest and c not in found and all(w in _UNIT_WORDS for w in rest.split("_")):
            found.append(c)
    if not found:
        # short names are spelled alike by chance (site/time, age/anc): they
        # only count as near with one edit
        scored = []
        for c in contract.columns:
            limit = 1 if min(len(folded), len(c)) <= 4 else 2
            d = _distance(folded, c, limit)
            if d <= limit:
                scored.append((d, c))
        found = [c for _, c in sorted(scored)]
    if _is_fahrenheit(folded):
        found = [c for c in found if c != "temp_c"]
    return found


@dataclass
class ColumnPlan:
    """What to do with each header cell of one header."""

    width: int
    named: int  # cells up to the last one with a name
    keep: dict[int, str] = field(default_factory=dict)  # position -> contract column
    unnamed: list[int] = field(default_factory=list)
    errors: list[InputProblem] = field(default_factory=list)  # file name filled in per file
    notes: list[str] = field(default_factory=list)


class ColumnMap:
    """The user's mapping of header names (as written or folded) to contract
    columns; an empty target leaves the column out."""

    def __init__(self, column_map: dict[str, str] | None, contract: Contract):
        self.targets: dict[str, str] = {}
        self.written: dict[str, str] = {}
        self.used: set[str] = set()
        for key, target in (column_map or {}).items():
            k, t = fold(key), fold(target)
            if not k:
                raise UsageError(f"--column '{key}={target}': the column name before '=' is empty")
            if t and t not in contract.columns:
                near = suggestions(t, contract)
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise UsageError(f"--column '{key}={target}': '{target}' is not a carscore column{hint}")
            if k in self.targets and self.targets[k] != t:
                raise UsageError(f"--column '{key}': given twice, as {self.targets[k] or 'left out'} and as {t or 'left out'}")
            self.targets[k] = t
            self.written.setdefault(k, key)

    def get(self, header: str) -> str | None:
        k = fold(header)
        if k in self.targets:
            self.used.add(k)
            return self.targets[k]
        return None

    def unused(self) -> list[str]:
        return [self.written[k] for k in self.targets if k not in self.used]


def parse_column_map(options: Iterable[str], contract: Contract) -> dict[str, str]:
    """``--column 'Temp C=temp_c'`` options as a column_map for read_frames
    (the last '=' splits, so a header may hold one). Raises UsageError."""
    mapping: dict[str, str] = {}
    for option in options:
        if "=" not in option:
            raise UsageError(f"--column '{option}': write it as 'HEADER=column' (e.g. --column 'Temp C=temp_c')")
        key, target = option.rsplit("=", 1)
        mapping[key.strip()] = target.strip()
    ColumnMap(mapping, contract)  # validates
    return mapping


def plan_columns(cells: list[str], contract: Contract, mapping: ColumnMap, ignore_unknown: bool) -> ColumnPlan:
    """What to do with each cell of one header: read as a contract column, left
    out with a note, or a problem that stops every file with this header."""
    width = len(cells)
    named = max((k + 1 for k, c in enumerate(cells) if fold(c)), default=0)
    plan = ColumnPlan(width, named)
    taken: dict[str, int] = {}  # contract column -> position
    near: list[tuple[int, str, list[str]]] = []
    fahrenheit: list[tuple[int, str]] = []
    far: list[str] = []
    left_out: list[str] = []
    asked_out: list[str] = []

    def take(pos: int, target: str, header: str, how: str) -> None:
        if target in taken:
            other = cells[taken[target]].strip()
            if how == "named" and fold(other) == target:
                message = f"the column '{target}' appears twice in the header"
            else:
                message = (
                    f"two columns would both be read as {target}: '{other}' (column {taken[target] + 1}) and "
                    f"'{header.strip()}' (column {pos + 1}); which one holds the data? Rename or remove one of them"
                )
            plan.errors.append(InputProblem("", message, 1, target if how == "named" else header.strip()))
            return
        taken[target] = pos
        plan.keep[pos] = target

    # mapped headers first, then headers that are contract names, so that a
    # clash names both cells whatever their order
    mapped: dict[int, str] = {}
    for pos, header in enumerate(cells):
        target = mapping.get(header) if fold(header) else None
        if target is None:
            continue
        mapped[pos] = target
        if target == "":
            asked_out.append(header.strip())
        elif target == "temp_c" and _is_fahrenheit(fold(header)):
            plan.errors.append(
                InputProblem(
                    "",
                    "cannot be read as temp_c: its name says degrees Fahrenheit and temp_c is in °C; "
                    "convert the values to °C in a temp_c column",
                    1,
                    header.strip(),
                )
            )
        else:
            take(pos, target, header, "mapped")
    for pos, header in enumerate(cells):
        f = fold(header)
        if pos in mapped:
            continue
        if not f:
            plan.unnamed.append(pos)
        elif f in contract.columns:
            take(pos, f, header, "named")
        elif _is_fahrenheit(f):
            fahrenheit.append((pos, header.strip()))
        elif near_to := suggestions(header, contract):
            near.append((pos, header.strip(), near_to))
        else:
            far.append(header.strip())

    for _, header in fahrenheit:
        if ignore_unknown:
            left_out.append(f"{header} (°F)")
        else:
            plan.errors.append(
                InputProblem(
                    "",
                    "a temperature in degrees Fahrenheit, it seems: carscore reads temp_c, in °C only; convert the "
                    "values to °C in a temp_c column, or pass --ignore-unknown-columns to leave this column out",
                    1,
                    header,
                )
            )
    for _, header, near_to in near:
        if ignore_unknown:
            left_out.append(f"{header} ({' or '.join(near_to)}?)")
            continue
        meant = " or ".join(_with_unit(c, contract) for c in near_to)
        plan.errors.append(
            InputProblem(
                "",
                f"not a carscore column; did you mean {meant}? Map it with --column '{header}={near_to[0]}' "
                "or pass --ignore-unknown-columns",
                1,
                header,
            )
        )
    if DAY not in taken and not any(DAY in n for _, _, n in near):
        # only this: the other header remarks mean little on a file that is
        # not a patient file (an infusions table in the cohort folder)
        shown = ", ".join(c.strip() for c in cells[:8]) + (" ..." if len(cells) > 8 else "")
        plan.errors = [InputProblem("", f"no 'day' column: this is not a carscore patient file (header: {shown})", 1)]
    if far:
        plan.notes.append(f"ignored columns that carscore does not use: {', '.join(far)}")
    if left_out:
        plan.notes.append(f"left out columns that carscore does not read (--ignore-unknown-columns): {', '.join(left_out)}")
    if asked_out:
        plan.notes.append(f"left out as asked (--column): {', '.join(asked_out)}")
    return plan


def _with_unit(column: str, contract: Contract) -> str:
    unit = contract.columns[column].unit
    return f"{column} ({unit})" if unit else column
