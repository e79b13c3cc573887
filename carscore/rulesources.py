"""Which rule sets a run uses, and where each one comes from.

The built-in rule sets are always the starting point. Rule files given by the
user (``--rules``) are added to them; a user rule set with the id of a
built-in one replaces that one only. Every rule set in use is recorded with
its file (a built-in one by its path inside the package, never the absolute
path of an installation), the SHA-256 of the file's bytes, whether it is
built-in, and each parameter whose value differs from the built-in rule set
of the same id, so that a result can always say what produced it.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carscore.errors import RuleError, RuleErrors
from carscore.ruleset import RuleSet, builtin_rules_dir, read_rules


@dataclass(frozen=True)
class RuleSetSource:
    """Where one rule set in use comes from."""

    id: str
    path: str  # as given with --rules; a built-in one relative to the package ("rules/astct_crs.yaml")
    sha256: str | None  # of the file's bytes when it was loaded; None if it could not be read
    builtin: bool  # the file is one of the built-in rule files
    replaces_builtin: bool  # a user rule set that takes the place of the built-in one with its id
    changed_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {value, builtin_value}

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "builtin": self.builtin,
            "changed_parameters": {k: dict(v) for k, v in self.changed_parameters.items()},
        }


# provenance of each engine made by assess.load_engine (an engine made
# another way is described from its rule sets' files when asked)
_SOURCES: weakref.WeakKeyDictionary[Any, dict[str, RuleSetSource]] = weakref.WeakKeyDictionary()


def builtin_rulesets(systems: set[str] | None = None) -> list[RuleSet]:
    """The built-in rule sets; with ``systems``, those of other grading systems
    are not read at all (their files are only looked at for their top-level
    ``system:`` line), so a run pays for the systems it grades."""
    folder = builtin_rules_dir()
    if systems is None:
        return read_rules([folder])
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    return read_rules([f for f in files if _system_of(f) in systems | {""}])


_SYSTEM_LINE = re.compile(r"^system:[ \t]*([a-z][a-z0-9_]*)[ \t]*(?:#.*)?$", re.MULTILINE)


def builtin_systems() -> set[str]:
    """The grading systems of the built-in rule files."""
    folder = builtin_rules_dir()
    return {s for f in [*folder.glob("*.yaml"), *folder.glob("*.yml")] if (s := _system_of(f))}


def _system_of(path: Path) -> str:
    """A built-in rule file's grading system, from its top-level line (no YAML read)."""
    found = _SYSTEM_LINE.search(path.read_text(encoding="utf-8"))
    return found.group(1) if found else ""


def combine(rules: list[str | Path] | None, builtin: list[RuleSet], with_builtins: bool = True) -> list[RuleSet]:
    """The built-in rule sets, each replaced by the user's rule set with the
    same id, then the user's other rule sets in the order given."""
    user = read_rules(_distinct_files(rules)) if rules else []
    combined = list(builtin) if with_builtins else []
    position = {rs.id: i for i, rs in enumerate(combined)}
    for rs in user:
        if rs.id in position:
            combined[position[rs.id]] = rs
        else:
            position[rs.id] = len(combined)
            combined.append(rs)
    return combined


def _distinct_files(paths: list[str | Path]) -> list[Path]:
    """The paths given, a file named twice (or also found in a folder given) only once."""
    out: list[Path] = []
    seen: set[Path] = set()
    for p in (Path(x) for x in paths):
        expanded = sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else []
        for f in expanded or [p]:  # an empty or missing folder stays: read_rules names the problem
            key = f.resolve() if f.exists() else f
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def describe(rulesets: list[RuleSet], builtin: list[RuleSet]) -> dict[str, RuleSetSource]:
    """Where each rule set in use comes from (id -> RuleSetSource)."""
    from carscore.includes import resolve_includes

    builtin_dir = _resolved(builtin_rules_dir())
    # a rule set in use carries the parameters of the libraries it includes: so does its reference
    by_id = {rs.id: rs for rs in builtin if rs.library} | {rs.id: rs for rs in resolve_includes(builtin)}
    out: dict[str, RuleSetSource] = {}
    for rs in rulesets:
        file = Path(rs.file)
        inside = _relative_to(_resolved(file), builtin_dir) if builtin_dir is not None else None
        is_builtin = inside is not None
        path = f"rules/{inside}" if inside is not None else rs.file
        reference = by_id.get(rs.id)
        out[rs.id] = RuleSetSource(
            id=rs.id,
            path=path,
            sha256=rs.sha256 or _sha256(file),
            builtin=is_builtin,
            replaces_builtin=not is_builtin and reference is not None,
            changed_parameters=changed_parameters(rs, reference) if reference is not None else {},
        )
    return out


def library_sources(rules: list[str | Path] | None) -> list[tuple[RuleSet, RuleSetSource]]:
    """The libraries among the built-in rule sets and the given files, and where each comes from."""
    builtin = builtin_rulesets()
    libraries = [rs for rs in combine(rules, builtin) if rs.library]
    described = describe(libraries, builtin)
    return [(rs, described[rs.id]) for rs in libraries]


def changed_parameters(rs: RuleSet, reference: RuleSet) -> dict[str, dict[str, Any]]:
    """Every parameter whose value differs from the built-in rule set (a parameter
    only one of them has counts too: the other side is null)."""
    changed: dict[str, dict[str, Any]] = {}
    for name in [*reference.parameters, *(n for n in rs.parameters if n not in reference.parameters)]:
        mine = rs.parameters.get(name)
        theirs = reference.parameters.get(name)
        value = mine.value if mine is not None else None
        builtin_value = theirs.value if theirs is not None else None
        if mine is None or theirs is None or not _same_value(value, builtin_value):
            changed[name] = {"value": value, "builtin_value": builtin_value}
    return changed


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # True is not 1
        return type(a) is type(b) and a == b
    return a == b  # 38 and 38.0 are the same threshold


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def _relative_to(path: Path | None, folder: Path | None) -> str | None:
    if path is None or folder is None:
        return None
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return None


def remember(engine: Any, sources: dict[str, RuleSetSource]) -> None:
    _SOURCES[engine] = sources


def sources_of(engine: Any) -> dict[str, RuleSetSource]:
    """Where each of an engine's rule sets comes from."""
    known = _SOURCES.get(engine)
    if known is None:
        known = describe(engine.rulesets, builtin_rulesets())
        _SOURCES[engine] = known
    return known


# --- a name that no rule set in use defines ---------------------------------

_UNKNOWN_NAME = re.compile(r"unknown name '([^']+)'")


def _defined_names(rs: RuleSet) -> set[str]:
    """The names a rule set defines for every rule set: outputs, flags, summary keys, row values."""
    return {*rs.outputs, *rs.flags, *rs.summary, *getattr(rs, "row_values", {})}


def explain_unknown_names(exc: RuleErrors, rulesets: list[RuleSet], builtin: list[RuleSet]) -> RuleErrors:
    """Say, for a name no rule set in use defines, which rule set would define it
    and why it is not there (replaced by a user rule set, or not loaded)."""
    in_use = {rs.id: rs for rs in rulesets}
    errors: list[RuleError] = []
    for err in exc.errors:
        m = _UNKNOWN_NAME.search(err.message)
        hint = _hint(m.group(1), in_use, builtin) if m else ""
        errors.append(RuleError(f"{err.message}; {hint}", err.file, err.line, err.col) if hint else err)
    return RuleErrors(errors)


def _hint(name: str, in_use: dict[str, RuleSet], builtin: list[RuleSet]) -> str:
    for b in builtin:
        if name not in _defined_names(b):
            continue
        used = in_use.get(b.id)
        if used is None:
            return f"'{name}' is defined by the built-in rule set '{b.id}' (rules/{Path(b.file).name}), which is not in use"
        if used.file != b.file:
            return (
                f"'{name}' is defined by the built-in rule set '{b.id}', but {used.file} replaces that rule set "
                f"(same id) and does not define it: define '{name}' there, or give that file another id"
            )
    for rs in in_use.values():
        if name in rs.parameters or name in rs.lets:
            kind = "a parameter" if name in rs.parameters else "a 'let' value"
            return f"'{name}' is {kind} of rule set '{rs.id}' ({rs.file}), which only that rule set can read"
    return f"no rule set in use defines '{name}' (rule sets in use: {', '.join(in_use)})"
