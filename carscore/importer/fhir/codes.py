"""The reader sections of a FHIR mapping (systems, observations, devices, procedures,
medications and their indications), read and checked into the codes the reader takes,
every mistake at file:line:col (exit 2)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from carscore.contract import Contract
from carscore.errors import RuleErrors
from carscore.importer.events import DRIP_COLUMNS, VASOPRESSIN
from carscore.importer.mapping import Mapping
from carscore.rulefile import FieldReader
from carscore.yamlsafe import LDict, LList

# columns no Observation may set: identity and course (the import computes them), and
# running drips (a MedicationAdministration's interval, import.md §2)
NOT_OBSERVED = ("patient_id", "infusion", "day", "time", "age_years", *DRIP_COLUMNS)
# words of the sections that are not code systems
COMPLETE = "complete"
INDICATIONS = "indications"
RESERVED = (COMPLETE, INDICATIONS)


@dataclass(frozen=True)
class Target:
    """What one code is read as: a contract column, with the unit implied when the
    record gives none, a value map (keys "<system url>|<code>" or a lower-case word),
    Observation.method read into another column, a drug's agent, an indication filter."""

    column: str
    unit: str | None = None
    values: tuple[tuple[str, str], ...] = ()
    method: Target | None = None
    agent: str | None = None
    indication: str | None = None


@dataclass(frozen=True)
class Indication:
    """Reasons a drug counts for: codes ("<system url>", code; a code ending in * is a
    prefix) and words found in a reason's text or display."""

    codes: tuple[tuple[str, str], ...] = ()
    words: tuple[str, ...] = ()


@dataclass
class FhirCodes:
    systems: dict[str, str] = field(default_factory=dict)  # short name -> system URI
    column_systems: set[str] = field(default_factory=set)  # systems whose code is a contract column
    observations: dict[tuple[str, str], Target] = field(default_factory=dict)
    devices: dict[tuple[str, str], str] = field(default_factory=dict)
    procedures: dict[tuple[str, str], str] = field(default_factory=dict)
    medications: dict[tuple[str, str], Target] = field(default_factory=dict)
    indications: dict[str, Indication] = field(default_factory=dict)
    complete: bool = True  # outside every oxygen interval the patient breathes room air


def system_uri(text: str) -> str:
    """Code system URIs as compared: trimmed, lower case, no trailing slash."""
    return text.strip().rstrip("/").lower()


def enum_word(text: str) -> str:
    """Enum values as the contract reads them: any case, spaces or hyphens for underscores."""
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


class _Sections:
    """Validation of the reader sections of a mapping, every error at file:line:col."""

    def __init__(self, mapping: Mapping, contract: Contract):
        self.r = FieldReader(mapping.file)
        self.raw = mapping.raw
        self.contract = contract
        self.codes = FhirCodes()

    def read(self) -> FhirCodes:
        self._systems()
        self._indications()
        self._observations()
        for section, into in (("devices", self.codes.devices), ("procedures", self.codes.procedures)):
            for key, code, value, at in self._entries(section):
                device = self._device(value, at, f"code '{code}' of '{section}'")
                if device:
                    into[key] = device
            # a system whose codes are columns names devices by the contract's words
            for uri in self.codes.column_systems:
                for word in self.contract.columns["o2_device"].values:
                    into.setdefault((uri, word), word)
        self._medications()
        if self.r.errors:
            raise RuleErrors(self.r.errors)
        return self.codes

    # systems: <name>: <uri>, or <name>: {url: <uri>, columns: true}
    def _systems(self) -> None:
        spec = self.raw.get("systems")
        if spec is None:
            return
        systems = self.r.mapping(spec, "'systems'", spec)
        for name, value in (systems or {}).items():
            if name in RESERVED:
                self.r.key_err(systems, name, f"'{name}' is a word of the mapping: give the system another name")  # type: ignore[arg-type]
                continue
            columns = False
            if isinstance(value, LDict):
                self.r.fields(value, {"url", "columns"}, {"url"}, f"system '{name}'")
                columns = value.get("columns", False)
                if not isinstance(columns, bool):
                    self.r.err(f"'columns' of system '{name}' must be true or false", columns, value)
                    columns = False
                value = value.get("url")
            if not isinstance(value, str) or ":" not in value:
                self.r.err(f"system '{name}' must be a URI (e.g. http://loinc.org) or {{url, columns}}", value, systems)
                continue
            self.codes.systems[str(name)] = system_uri(value)
            if columns:
                self.codes.column_systems.add(system_uri(value))

    def _system(self, name: Any, at: LDict) -> str | None:
        if name in self.codes.systems:
            return self.codes.systems[name]
        if isinstance(name, str) and ":" in name:
            return system_uri(name)
        self.r.key_err(at, name, f"unknown code system '{name}': name it in 'systems' or write its URI")
        return None

    def _entries(self, section: str):  # type: ignore[no-untyped-def]
        """(system uri, code) key, code, target and its position, for every code of a section."""
        spec = self.raw.get(section)
        if spec is None:
            return
        by_system = self.r.mapping(spec, f"'{section}'", spec)
        for name, codes in (by_system or {}).items():
            if name in RESERVED:
                continue
            uri = self._system(name, by_system)  # type: ignore[arg-type]
            entries = self.r.mapping(codes, f"the codes of '{name}' in '{section}'", by_system)
            if uri is None or entries is None:
                continue
            for code, value in entries.items():
                code_text = str(code).strip()
                if uri in self.codes.column_systems:
                    code_text = enum_word(code_text)
                yield (uri, code_text), code, value, entries

    def _column(self, name: Any, at: Any, what: str, refused: tuple[str, ...] = ()) -> str | None:
        if not isinstance(name, str) or name not in self.contract.columns:
            self.r.err(f"{what}: '{name}' is not a contract column", name, at)
            return None
        if name in refused:
            self.r.err(f"{what}: '{name}' cannot be read from here", name, at)
            return None
        return name

    def _device(self, value: Any, at: Any, what: str) -> str | None:
        devices = self.contract.columns["o2_device"].values
        if not isinstance(value, str) or enum_word(value) not in devices:
            self.r.err(f"{what}: '{value}' is not an o2_device value ({', '.join(devices)})", value, at)
            return None
        return enum_word(value)

    def _values(self, spec: Any, at: Any, what: str) -> tuple[tuple[str, str], ...]:
        if spec is None:
            return ()
        values = self.r.mapping(spec, f"'values' of {what}", at)
        out = []
        for key, value in (values or {}).items():
            if isinstance(value, bool):
                value = "yes" if value else "no"
            if not isinstance(value, (str, int, float)):
                self.r.err(f"'values' of {what}: '{key}' must map to a value", value, values)
                continue
            system, bar, code = str(key).rpartition("|")
            if bar:
                uri = self._system(system, values)  # type: ignore[arg-type]
                if uri is None:
                    continue
                out.append((f"{uri}|{code.strip()}", str(value)))
            else:
                out.append((str(key).strip().lower(), str(value)))
        return tuple(out)

    # observations: <system>: {<code>: <column> | {column, unit, values, method}}
    def _observations(self) -> None:
        for key, code, spec, at in self._entries("observations"):
            what = f"code '{code}' of 'observations'"
            target = self._observation_target(spec, at, what)
            if target is not None:
                self.codes.observations[key] = target
        # a system whose codes are columns reads every column an Observation may carry
        for uri in self.codes.column_systems:
            for name in self.contract.columns:
                if name not in NOT_OBSERVED:
                    self.codes.observations.setdefault((uri, name), Target(name))

    def _observation_target(self, spec: Any, at: Any, what: str) -> Target | None:
        if isinstance(spec, str):
            column = self._column(spec, at, what, NOT_OBSERVED)
            return Target(column) if column else None
        if not isinstance(spec, LDict):
            self.r.err(f"{what} must be a contract column or a mapping with 'column'", spec, at)
            return None
        self.r.fields(spec, {"column", "unit", "values", "method"}, {"column"}, what)
        column = self._column(spec.get("column"), spec, what, NOT_OBSERVED)
        if column is None:
            return None
        method = None
        if "method" in spec:
            m = spec["method"]
            m_spec = m if isinstance(m, LDict) else LDict({"column": m})
            if isinstance(m, LDict):
                self.r.fields(m, {"column", "values"}, {"column"}, f"'method' of {what}")
            m_column = self._column(m_spec.get("column"), m if isinstance(m, (LDict, str)) else spec, f"'method' of {what}")
            if m_column and self.contract.columns[m_column].kind != "enum":
                self.r.err(f"'method' of {what}: '{m_column}' is not an enum column", m, spec)
                m_column = None
            if m_column:
                method = Target(m_column, values=self._values(m_spec.get("values"), m_spec, f"'method' of {what}"))
        unit = spec.get("unit")
        if unit is not None and not isinstance(unit, str):
            self.r.err(f"'unit' of {what} must be text (a UCUM unit)", unit, spec)
            unit = None
        return Target(column, unit, self._values(spec.get("values"), spec, what), method)

    # indications: {<name>: {codes: {<system>: [codes, prefix*]}, words: [...]}}
    def _indications(self) -> None:
        section = self.raw.get("medications")
        if not isinstance(section, LDict) or INDICATIONS not in section:
            return
        named = self.r.mapping(section[INDICATIONS], f"'{INDICATIONS}' of 'medications'", section)
        for name, spec in (named or {}).items():
            what = f"indication '{name}'"
            if not isinstance(spec, LDict):
                self.r.err(f"{what} must be a mapping with 'codes' and/or 'words'", spec, named)
                continue
            self.r.fields(spec, {"codes", "words"}, set(), what)
            codes: list[tuple[str, str]] = []
            by_system = self.r.mapping(spec["codes"], f"'codes' of {what}", spec) if "codes" in spec else None
            for system, listed in (by_system or {}).items():
                uri = self._system(system, by_system)  # type: ignore[arg-type]
                items = listed if isinstance(listed, LList) else [listed]
                for item in items:
                    if not isinstance(item, str) or not item.strip():
                        self.r.err(f"'codes' of {what} must be codes written as text (in quotes if numeric)", item, by_system)
                    elif uri:
                        codes.append((uri, item.strip()))
            words = spec.get("words") or []
            if not isinstance(words, LList) or not all(isinstance(w, str) and w.strip() for w in words):
                self.r.err(f"'words' of {what} must be a list of words", words, spec)
                words = []
            self.codes.indications[str(name)] = Indication(tuple(codes), tuple(w.strip().lower() for w in words))

    # medications: <system>: {<code>: <column> | {column, agent, indication}}
    def _medications(self) -> None:
        section = self.raw.get("medications")
        allowed = tuple(n for n, c in self.contract.columns.items() if c.kind in ("boolean", "dose")) + DRIP_COLUMNS
        for key, code, spec, at in self._entries("medications"):
            what = f"code '{code}' of 'medications'"
            if isinstance(spec, str):
                spec = LDict({"column": spec})
                spec.line, spec.col, spec.file = getattr(at, "line", 0), getattr(at, "col", 0), self.r.file
            if not isinstance(spec, LDict):
                self.r.err(f"{what} must be a contract column or a mapping with 'column'", spec, at)
                continue
            self.r.fields(spec, {"column", "agent", "indication"}, {"column"}, what)
            column = spec.get("column")
            if column not in allowed:
                self.r.err(f"{what}: '{column}' is not a column a medication sets ({', '.join(allowed)})", column, spec)
                continue
            agent = spec.get("agent")
            if column == VASOPRESSIN:
                agent = agent or VASOPRESSIN
            if column in DRIP_COLUMNS and (not isinstance(agent, str) or not agent.strip()):
                self.r.err(f"{what}: a vasopressor needs 'agent' (agents running together are counted)", spec, at)
                continue
            indication = spec.get("indication")
            if indication is not None and indication not in self.codes.indications:
                self.r.err(f"{what}: no indication '{indication}' in '{INDICATIONS}' of 'medications'", indication, spec)
                continue
            self.codes.medications[key] = Target(
                str(column), agent=str(agent).strip().lower() if agent else None, indication=indication
            )
        if isinstance(section, LDict) and COMPLETE in section:
            self.r.err(f"'{COMPLETE}' belongs to 'procedures'", section, section)
        procedures = self.raw.get("procedures")
        if isinstance(procedures, LDict) and COMPLETE in procedures:
            if not isinstance(procedures[COMPLETE], bool):
                self.r.err(f"'{COMPLETE}' of 'procedures' must be true or false", procedures[COMPLETE], procedures)
            else:
                self.codes.complete = procedures[COMPLETE]


def fhir_codes(mapping: Mapping, contract: Contract) -> FhirCodes:
    """The codes a FHIR mapping reads; its mistakes as RuleErrors (file:line:col, exit 2)."""
    return _Sections(mapping, contract).read()
