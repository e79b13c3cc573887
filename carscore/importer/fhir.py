"""FHIR R4 bulk data (NDJSON) read into events (import.md §5 "fhir", §3, §7).

Every ``*.ndjson`` among the sources is parsed by polars in one pass per file,
whatever resource types it mixes; the resources are then taken by type:

    Patient                   patient_id = Patient.id; records name theirs in subject "Patient/<id>"
    Observation               at effectiveDateTime (else effectivePeriod.start); value[x]; each
                              component read as its own code (systolic 8480-6 inside 85354-9)
    MedicationAdministration  medicationCodeableConcept (or the Medication it references); a
                              drip runs over its effectivePeriod, a drug is given at
                              effectiveDateTime (else effectivePeriod.start)
    Procedure                 performedPeriod: the oxygen device in force over that interval
    DeviceUseStatement        timingPeriod, the referenced Device's type

Which codes are read is the mapping's: its sections ``systems``, ``observations``,
``devices``, ``procedures`` and ``medications`` (``fhir_codes`` reads them; the
preset presets/fhir.yaml shows their shape).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from carscore.contract import Contract
from carscore.errors import InputProblem, RuleErrors, UsageError
from carscore.importer.clock import parse_timestamps
from carscore.importer.events import DRIP_COLUMNS, STATE_COLUMNS, VASOPRESSIN, VITAL_COLUMNS, conform, empty
from carscore.importer.mapping import Mapping
from carscore.importer.rows import problem
from carscore.importer.tables import _BOUND, _NOT_DETECTED, NO_VALUE, Read
from carscore.ruleset import _Reader
from carscore.yamlsafe import LDict, LList

# --- the mapping's reader sections ----------------------------------------------------------

# columns no Observation may set: identity and course (the import computes them), and
# running drips (a MedicationAdministration's interval, import.md §2)
NOT_OBSERVED = ("patient_id", "infusion", "day", "time", "age_years", *DRIP_COLUMNS)
# words of the sections that are not code systems
COMPLETE = "complete"
INDICATIONS = "indications"
RESERVED = (COMPLETE, INDICATIONS)
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


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
        self.r = _Reader(mapping.file)
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


# --- NDJSON files -----------------------------------------------------------------------

_CODING = pl.Struct({"system": pl.String, "code": pl.String, "display": pl.String})
_CONCEPT = pl.Struct({"coding": pl.List(_CODING), "text": pl.String})
_QUANTITY = pl.Struct({"value": pl.Float64, "comparator": pl.String, "unit": pl.String, "system": pl.String, "code": pl.String})
_PERIOD = pl.Struct({"start": pl.String, "end": pl.String})
_REFERENCE = pl.Struct({"reference": pl.String, "display": pl.String})
_VALUES = {
    "valueQuantity": _QUANTITY,
    "valueCodeableConcept": _CONCEPT,
    "valueString": pl.String,
    "valueBoolean": pl.Boolean,
    "valueInteger": pl.Int64,
}
# the fields read, of every resource type: one schema, so that a file may mix types
SCHEMA = pl.Schema(
    {
        "resourceType": pl.String,
        "id": pl.String,
        "meta": pl.Struct({"versionId": pl.String, "lastUpdated": pl.String}),
        "status": pl.String,
        "subject": _REFERENCE,
        "code": _CONCEPT,
        "type": _CONCEPT,
        "effectiveDateTime": pl.String,
        "effectiveInstant": pl.String,
        "effectivePeriod": _PERIOD,
        **_VALUES,
        "component": pl.List(pl.Struct({"code": _CONCEPT, **_VALUES})),
        "method": _CONCEPT,
        "medicationCodeableConcept": _CONCEPT,
        "medicationReference": _REFERENCE,
        "request": _REFERENCE,
        "reasonCode": pl.List(_CONCEPT),
        "reasonReference": pl.List(_REFERENCE),
        "dosage": pl.Struct({"dose": pl.Struct({"value": pl.Float64}), "rateQuantity": pl.Struct({"value": pl.Float64})}),
        "performedDateTime": pl.String,
        "performedPeriod": _PERIOD,
        "timingDateTime": pl.String,
        "timingPeriod": _PERIOD,
        "device": _REFERENCE,
        "birthDate": pl.String,
        "contained": pl.List(pl.Struct({"resourceType": pl.String, "id": pl.String, "code": _CONCEPT, "type": _CONCEPT})),
    }
)
RESOURCE = pl.Struct(dict(SCHEMA))
READ_TYPES = ("Patient", "Observation", "MedicationAdministration", "Procedure", "DeviceUseStatement", "Device", "Medication")
# import.md §3: dropped (the record does not exist) and skipped (not yet a result), by status
DROPPED = ("entered-in-error", "cancelled", "not-done")
SKIPPED = ("preliminary", "registered", "preparation", "intended")
_PROBLEMS_SHOWN = 50


def ndjson_files(paths: list[str], out: Read) -> list[Path]:
    found: dict[Path, None] = {}
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and f.name.lower().endswith(".ndjson"):
                    found.setdefault(f.resolve(), None)
        elif path.is_file():
            if path.name.lower().endswith(".ndjson"):
                found.setdefault(path.resolve(), None)
            else:
                out.notes.append(f"{path.name}: not an .ndjson file, not read by the fhir reader")
        else:
            raise UsageError(f"{p}: no such file or folder")
    return list(found)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def _bounded(text: str) -> int:
    number = int(text)
    if abs(number) >= 2**63:
        raise ValueError(text)
    return number


def _refuse(text: str) -> None:
    raise ValueError(text)


def _lines(path: Path) -> pl.LazyFrame:
    """_line (1-based) and _json: the file's non-blank lines as text. JSON holds no raw
    control character, so the separator U+0001 never splits a line of valid NDJSON."""
    return (
        pl.scan_csv(
            path,
            has_header=False,
            separator="\x01",
            quote_char=None,
            new_columns=["_json"],
            infer_schema=False,
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
        )
        .with_row_index("_line", offset=1)
        .select(pl.col("_line").cast(pl.Int64), pl.nth(1).alias("_json"))
        .filter(pl.col("_json").str.strip_chars().str.len_bytes() > 0)
    )


def read_ndjson(path: Path, out: Read) -> pl.DataFrame:
    """The resources of one file with ``_line`` (1-based NDJSON line). Fast path: the lines
    decoded by polars at once. A file with a line that is not a JSON object is read line by
    line: that line is a problem, the rest is read."""
    if not path.stat().st_size:
        return pl.DataFrame(schema={"_line": pl.Int64, **SCHEMA})
    try:
        # streamed: the file's text is never held whole beside the resources decoded from it
        decoded = _lines(path).select("_line", pl.col("_json").str.json_decode(RESOURCE).alias("_r")).unnest("_r")
        return decoded.collect(engine="streaming")
    except Exception:  # noqa: BLE001 - a malformed line fails the whole column: find it below
        pass
    try:
        lines = _lines(path).collect()
    except Exception as exc:  # noqa: BLE001 - polars raises several kinds for unreadable files
        raise UsageError(f"{path.name}: cannot be read ({str(exc).strip().splitlines()[0]})") from None
    good, numbers, bad = [], [], []
    for number, text in lines.iter_rows():
        try:
            record = json.loads(text, parse_float=_finite, parse_int=_bounded, parse_constant=_refuse)
        except (ValueError, RecursionError):
            bad.append(number)
            continue
        if not isinstance(record, dict):
            bad.append(number)
            continue
        good.append(text)
        numbers.append(number)
    for number in bad[:_PROBLEMS_SHOWN]:
        out.problems.append(InputProblem(path.name, "not a JSON object (one FHIR resource per line): line skipped", number))
    if len(bad) > _PROBLEMS_SHOWN:
        out.problems.append(InputProblem(path.name, f"... and {len(bad) - _PROBLEMS_SHOWN} more lines that are not JSON", 0))
    if not good:
        return pl.DataFrame(schema={"_line": pl.Int64, **SCHEMA})
    if not bad:
        out.notes.append(f"{path.name}: fields of an unexpected JSON type (a number written as text ...) were read as absent")
    try:
        # a field of an unexpected JSON type (a number written as text) is read as absent
        frame = pl.read_ndjson("\n".join(good).encode(), schema=SCHEMA, ignore_errors=True)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"{path.name}: cannot be read as FHIR NDJSON ({str(exc).strip().splitlines()[0]})") from None
    return frame.with_columns(pl.Series("_line", numbers, dtype=pl.Int64)).select("_line", *SCHEMA.names())


def _utc_us(stamp: pl.Expr) -> pl.Expr:
    """UTC microseconds of a stamp with a clock time and an offset; null otherwise."""
    parsed = parse_timestamps(stamp)
    placed = parsed["valid"] & parsed["has_time"] & parsed["offset_min"].is_not_null()
    return pl.when(placed).then(parsed["naive"].dt.epoch("us") - parsed["offset_min"].cast(pl.Int64) * 60_000_000)


def latest_versions(resources: pl.DataFrame, out: Read) -> pl.DataFrame:
    """One record per resource id: the highest meta.versionId, else the latest
    meta.lastUpdated, else the last one read (import.md §3)."""
    key = ["resourceType", "id"]
    repeated = resources.select("_seq", *key, "meta").filter(pl.col("id").is_not_null() & pl.struct(key).is_duplicated())
    if not repeated.height:
        return resources
    ranked = repeated.with_columns(
        _version=pl.col("meta").struct.field("versionId").str.strip_chars().cast(pl.Int64, strict=False),
        _version_text=pl.col("meta").struct.field("versionId"),
        _updated=_utc_us(pl.col("meta").struct.field("lastUpdated")),
    ).sort(["_version", "_version_text", "_updated", "_seq"], nulls_last=False)
    replaced = ranked.join(ranked.unique(key, keep="last").select("_seq"), on="_seq", how="anti")
    out.notes.append(f"{replaced.height} earlier versions of resources were replaced by their latest version")
    return resources.join(replaced.select("_seq"), on="_seq", how="anti", maintain_order="left")


# --- codes --------------------------------------------------------------------------------


def _codings(frame: pl.DataFrame, concept: pl.Expr, key: str) -> pl.DataFrame:
    """One row per coding of a CodeableConcept: key, _ci (its place), _system, _code, _display."""
    return (
        frame.select(key, concept.struct.field("coding").alias("_coding"))
        .explode("_coding")
        .filter(pl.col("_coding").is_not_null())
        .with_columns(_ci=pl.int_range(pl.len(), dtype=pl.Int64).over(key))
        .select(
            key,
            "_ci",
            pl.col("_coding")
            .struct.field("system")
            .str.strip_chars()
            .str.strip_chars_end("/")
            .str.to_lowercase()
            .alias("_system"),
            pl.col("_coding").struct.field("code").str.strip_chars().alias("_code"),
            pl.col("_coding").struct.field("display").alias("_display"),
        )
    )


def _match(codings: pl.DataFrame, table: pl.DataFrame, key: str, column_systems: set[str]) -> pl.DataFrame:
    """The first coding of each key found in a code table (_system, _code, _t)."""
    codings = codings.with_columns(
        _code=pl.when(pl.col("_system").is_in(list(column_systems)))
        .then(pl.col("_code").str.to_lowercase().str.replace_all(r"[\s\-]+", "_"))
        .otherwise(pl.col("_code"))
    )
    return codings.join(table, on=["_system", "_code"], how="inner").sort([key, "_ci"]).unique(key, keep="first").drop("_ci")


def _unread_note(out: Read, what: str, codings: pl.DataFrame, keys: pl.DataFrame, key: str) -> None:
    """Records of a vocabulary this mapping does not read: skipped, counted by code."""
    if not keys.height:
        return
    first = codings.sort([key, "_ci"]).unique(key, keep="first")
    named = (
        keys.select(key)
        .join(first, on=key, how="left")
        .with_columns(
            _name=pl.when(pl.col("_code").is_null())
            .then(pl.lit("no code"))
            .otherwise(pl.concat_str([pl.coalesce("_system", pl.lit("?")), pl.lit("|"), pl.col("_code")]))
        )
    )
    top = named.group_by("_name").len().sort(["len", "_name"], descending=[True, False]).head(8)
    listed = ", ".join(f"{n} ({c})" for n, c in top.iter_rows())
    out.notes.append(f"{keys.height} {what} with codes this mapping does not read were skipped: {listed}")


def _problems(out: Read, frame: pl.DataFrame, message: str, field_name: str, value: str) -> None:
    """One problem per record (source, value column), the first few only."""
    for src, shown_value in frame.select("_src", value).head(_PROBLEMS_SHOWN).iter_rows():
        out.problems.append(problem(src, message, field_name, shown_value))
    if frame.height > _PROBLEMS_SHOWN:
        first = problem(frame["_src"][0], message)
        out.problems.append(InputProblem(first.file, f"... and {frame.height - _PROBLEMS_SHOWN} more: {message}", 0, field_name))


def _patient(reference: pl.Expr) -> pl.Expr:
    return reference.str.extract(r"(?:^|/)Patient/([^/]+)", 1)


def _status(frame: pl.DataFrame, what: str, out: Read) -> pl.DataFrame:
    """Records that do not exist (entered in error, cancelled, not done) dropped; results not
    yet final (preliminary, registered) and plans (preparation, intended) skipped, counted."""
    status = pl.col("status").str.strip_chars().str.to_lowercase()
    dropped = frame.filter(status.is_in(list(DROPPED))).height
    skipped = frame.filter(status.is_in(list(SKIPPED)))
    if dropped or skipped.height:
        counts = ", ".join(f"{s} {n}" for s, n in skipped.group_by("status").len().sort("status").iter_rows())
        said = [f"{dropped} dropped by their status (entered-in-error, cancelled, not-done)"] if dropped else []
        said += [f"{skipped.height} skipped as not final ({counts})"] if skipped.height else []
        out.notes.append(f"{what}: {' and '.join(said)}")
    frame = frame.filter(~status.is_in(list(DROPPED + SKIPPED)).fill_null(True))
    no_patient = frame.filter(pl.col("patient_id").is_null())
    if no_patient.height:
        out.notes.append(f"{what}: {no_patient.height} records whose subject is not a Patient reference were skipped")
    return frame.filter(pl.col("patient_id").is_not_null())


# --- Observations ---------------------------------------------------------------------------


def _code_table(targets: dict[tuple[str, str], Target]) -> tuple[pl.DataFrame, list[Target]]:
    listed = list(targets.items())
    table = pl.DataFrame(
        {
            "_system": [s for (s, _), _ in listed],
            "_code": [c for (_, c), _ in listed],
            "_t": list(range(len(listed))),
            "column": [t.column for _, t in listed],
        },
        schema={"_system": pl.String, "_code": pl.String, "_t": pl.Int64, "column": pl.String},
    )
    return table, [t for _, t in listed]


def _value_keys(targets: list[Target], codes: FhirCodes, contract: Contract, method: bool = False) -> pl.DataFrame:
    """_t, _key, _mapped: every key a value can be read by for each target: its value map,
    oxygen devices (o2_device), and the enum words of a column system."""
    rows = []
    for i, target in enumerate(targets):
        target = (target.method or Target("")) if method else target
        if not target.column:
            continue
        for key, value in target.values:
            rows.append((i, key, value))
        if target.column == "o2_device":
            rows += [(i, f"{s}|{c}", d) for (s, c), d in codes.devices.items()]
        column = contract.columns[target.column]
        words = column.values if column.kind == "enum" else ("yes", "no", "true", "false") if column.kind == "boolean" else ()
        rows += [(i, f"{s}|{w}", w) for s in codes.column_systems for w in words]
    return pl.DataFrame(rows, schema={"_t": pl.Int64, "_key": pl.String, "_mapped": pl.String}, orient="row").unique(
        ["_t", "_key"], keep="first", maintain_order=True
    )


def _coded_value(entries: pl.DataFrame, concept: str, keys: pl.DataFrame, codes: FhirCodes, key: str = "_eid") -> pl.DataFrame:
    """key, _coded: a CodeableConcept's value for its target: the first coding found among the
    target's keys, else its text or a coding's display when the map names that word."""
    codings = _codings(entries, pl.col(concept), key).join(entries.select(key, "_t"), on=key)
    codings = codings.with_columns(
        _key=pl.concat_str(
            [
                pl.col("_system"),
                pl.lit("|"),
                pl.when(pl.col("_system").is_in(list(codes.column_systems)))
                .then(pl.col("_code").str.to_lowercase().str.replace_all(r"[\s\-]+", "_"))
                .otherwise(pl.col("_code")),
            ]
        )
    )
    by_code = codings.join(keys, on=["_t", "_key"], how="inner").sort([key, "_ci"]).unique(key, keep="first")
    words = pl.concat(
        [
            entries.select(
                key, "_t", pl.col(concept).struct.field("text").alias("_word"), pl.lit(-1, dtype=pl.Int64).alias("_ci")
            ),
            codings.select(key, "_t", pl.col("_display").alias("_word"), "_ci"),
        ]
    ).with_columns(_key=pl.col("_word").str.strip_chars().str.to_lowercase())
    by_word = words.join(keys, on=["_t", "_key"], how="inner").sort([key, "_ci"]).unique(key, keep="first")
    return (
        entries.select(key)
        .join(by_code.select(key, pl.col("_mapped").alias("_by_code")), on=key, how="left")
        .join(by_word.select(key, pl.col("_mapped").alias("_by_word")), on=key, how="left")
        .select(key, pl.coalesce("_by_code", "_by_word").alias("_coded"))
    )


def _entries(observations: pl.DataFrame) -> pl.DataFrame:
    """One row per value an Observation holds: itself (_part 0) and each component (1, 2 ...)."""
    base = ["_src", "patient_id", "stamp", "method"]
    own = observations.select(
        *base,
        pl.lit(0, dtype=pl.Int64).alias("_part"),
        "code",
        *_VALUES,
        (pl.col("component").list.len().fill_null(0) > 0).alias("_panel"),
    )
    parts = (
        observations.select(*base, "component")
        .explode("component")
        .filter(pl.col("component").is_not_null())
        .with_columns(_part=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("_src"))
        .select(
            *base,
            "_part",
            pl.col("component").struct.field("code").alias("code"),
            *[pl.col("component").struct.field(v).alias(v) for v in _VALUES],
            pl.lit(False).alias("_panel"),
        )
    )
    entries = pl.concat([own, parts])
    return entries.with_columns(_eid=pl.int_range(pl.len(), dtype=pl.Int64))


def read_observations(frame: pl.DataFrame, codes: FhirCodes, contract: Contract, naive: str, out: Read) -> pl.DataFrame:
    if not frame.height:
        return empty()
    frame = frame.with_columns(
        stamp=pl.coalesce(
            pl.col("effectiveDateTime"), pl.col("effectivePeriod").struct.field("start"), pl.col("effectiveInstant")
        ).str.strip_chars()
    )
    untimed = frame.filter(pl.col("stamp").is_null() | (pl.col("stamp") == ""))
    _problems(
        out, untimed.with_columns(_none=pl.lit("")), "an Observation without effective[x]: record skipped", "effective", "_none"
    )
    frame = frame.filter(pl.col("stamp").is_not_null() & (pl.col("stamp") != ""))
    entries = _entries(frame)
    has_value = pl.any_horizontal([pl.col(v).is_not_null() for v in _VALUES])
    table, targets = _code_table(codes.observations)
    codings = _codings(entries, pl.col("code"), "_eid")
    matched = _match(codings, table, "_eid", codes.column_systems)
    # a code of a column system that names no column: an error until mapped (import.md §7)
    unmatched = entries.join(matched.select("_eid"), on="_eid", how="anti")
    foreign = unmatched.join(
        codings.filter(pl.col("_system").is_in(list(codes.column_systems))).unique("_eid", keep="first"), on="_eid"
    )
    _problems(
        out,
        foreign.with_columns(_shown=pl.concat_str([pl.col("_system"), pl.lit("|"), pl.col("_code")])),
        "a code of the carscore code system that is not a column an Observation can carry: record skipped",
        "code",
        "_shown",
    )
    unread = unmatched.join(foreign.select("_eid"), on="_eid", how="anti").filter(has_value | ~pl.col("_panel"))
    _unread_note(out, "Observation values", codings, unread, "_eid")
    entries = entries.join(matched.select("_eid", "_t", "column"), on="_eid", how="inner")
    empty_values = entries.filter(~has_value)
    if empty_values.height:
        out.notes.append(f"{empty_values.height} Observations of read codes hold no value (dataAbsentReason?) and were skipped")
    entries = entries.filter(has_value)
    events = _observation_values(entries, targets, codes, contract, out)
    methods = _methods(entries, targets, codes, contract, out)
    return pl.concat([events, methods]).with_columns(naive=pl.lit(naive))


def _observation_values(
    entries: pl.DataFrame, targets: list[Target], codes: FhirCodes, contract: Contract, out: Read
) -> pl.DataFrame:
    keys = _value_keys(targets, codes, contract)
    coded = _coded_value(entries.filter(pl.col("valueCodeableConcept").is_not_null()), "valueCodeableConcept", keys, codes)
    entries = entries.join(coded, on="_eid", how="left")
    # a word of the value map written as valueString
    spoken = entries.select("_eid", "_t", pl.col("valueString").str.strip_chars().str.to_lowercase().alias("_key")).join(
        keys, on=["_t", "_key"], how="inner"
    )
    entries = entries.join(spoken.select("_eid", pl.col("_mapped").alias("_said")), on="_eid", how="left")
    numeric_columns = [n for n, c in contract.columns.items() if c.numeric]
    units = pl.DataFrame(
        {"_t": list(range(len(targets))), "_implied": [t.unit for t in targets]}, schema={"_t": pl.Int64, "_implied": pl.String}
    )
    entries = entries.join(units, on="_t", how="left")
    quantity = pl.col("valueQuantity")
    q_system = quantity.struct.field("system").str.strip_chars().str.strip_chars_end("/").str.to_lowercase()
    ucum = quantity.struct.field("code").str.strip_chars()
    q_unit = pl.when(ucum.is_not_null() & (ucum != "") & (q_system.is_null() | (q_system == "http://unitsofmeasure.org")))
    q_unit = q_unit.then(ucum).otherwise(quantity.struct.field("unit").str.strip_chars())
    concept = pl.col("valueCodeableConcept")
    written = pl.coalesce(
        pl.col("_coded"),
        pl.col("_said"),
        pl.col("valueString").str.strip_chars(),
        concept.struct.field("text"),
        concept.struct.field("coding").list.first().struct.field("display"),
        concept.struct.field("coding").list.first().struct.field("code"),
    )
    value_number = quantity.struct.field("value")
    entries = entries.with_columns(
        _numeric=pl.col("column").is_in(numeric_columns),
        _written=written,
        _q=value_number,
        _comparator=quantity.struct.field("comparator").str.strip_chars(),
        unit=pl.when(value_number.is_not_null()).then(pl.coalesce(q_unit, pl.col("_implied"))).otherwise(pl.col("_implied")),
    )
    numeric = _numbers(entries.filter(pl.col("_numeric")), out)
    words = _words(entries.filter(~pl.col("_numeric")), contract, out)
    return pl.concat([numeric, words])


def _numbers(entries: pl.DataFrame, out: Read) -> pl.DataFrame:
    """Numeric columns: valueQuantity (its comparator kept in the source), valueInteger, or a
    number written as text ("<5" is 5, "not detected" 0; results that state no value skipped)."""
    text = pl.col("_written")
    bound = text.str.extract(_BOUND.pattern, 2).str.replace(",", ".")
    from_text = (
        pl.when(bound.is_not_null())
        .then(bound)
        .when(text.str.contains(_NOT_DETECTED.pattern))
        .then(pl.lit("0"))
        .otherwise(text.str.replace(",", "."))
        .cast(pl.Float64, strict=False)
    )
    entries = entries.with_columns(
        number=pl.coalesce(pl.col("_q"), pl.col("valueInteger").cast(pl.Float64), from_text),
        _bound=pl.coalesce(pl.col("_comparator"), text.str.extract(_BOUND.pattern, 1)),
        _nothing=pl.col("_q").is_null() & pl.col("valueInteger").is_null() & text.str.contains(NO_VALUE.pattern).fill_null(False),
    )
    nothing = entries.filter(pl.col("_nothing"))
    if nothing.height:
        out.notes.append(f"{nothing.height} Observation results that state no value were skipped")
    entries = entries.filter(~pl.col("_nothing"))
    bad = entries.filter(pl.col("number").is_null() | ~pl.col("number").is_finite())
    _problems(
        out,
        bad.with_columns(_shown=pl.coalesce(text, pl.col("valueBoolean").cast(pl.String))),
        "is not a number for its column: record skipped",
        "value",
        "_shown",
    )
    entries = entries.filter(pl.col("number").is_not_null() & pl.col("number").is_finite())
    return entries.with_columns(
        kind=pl.when(pl.col("column").is_in(STATE_COLUMNS)).then(pl.lit("state")).otherwise(pl.lit("measure")),
        text=pl.lit(None, dtype=pl.String),
        source=pl.when(pl.col("_bound").is_not_null())
        .then(pl.concat_str([pl.col("_src"), pl.lit(" ("), pl.col("_bound"), pl.lit(")")]))
        .otherwise(pl.col("_src")),
    ).pipe(conform)


def _words(entries: pl.DataFrame, contract: Contract, out: Read) -> pl.DataFrame:
    """Enum, boolean and dose columns: a code of the value's map or of the carscore system,
    valueBoolean, a word; an enum or boolean value the contract does not know is an error."""
    number_text = pl.col("_q").cast(pl.String).str.replace(r"\.0$", "")
    integer = pl.col("valueInteger").cast(pl.String)
    boolean = pl.when(pl.col("valueBoolean")).then(pl.lit("yes")).when(pl.col("valueBoolean").is_not_null()).then(pl.lit("no"))
    raw = pl.coalesce(boolean, pl.col("_written"), number_text, integer)
    entries = entries.with_columns(_raw=raw, _word=raw.str.strip_chars().str.to_lowercase().str.replace_all(r"[\s\-]+", "_"))
    allowed = [(name, word) for name, c in contract.columns.items() if c.kind == "enum" for word in c.values]
    allowed += [(name, w) for name, c in contract.columns.items() if c.kind == "boolean" for w in (*_YES, *_NO)]
    words = pl.DataFrame(allowed, schema={"column": pl.String, "_word": pl.String}, orient="row").with_columns(_ok=pl.lit(True))
    checked = [n for n, c in contract.columns.items() if c.kind in ("enum", "boolean")]
    entries = entries.join(words, on=["column", "_word"], how="left").with_columns(
        _ok=pl.col("_ok").fill_null(False) | ~pl.col("column").is_in(checked)
    )
    unknown = entries.filter(~pl.col("_ok"))
    _problems(
        out, unknown, "is not a value this mapping knows for its column: map it in 'values' or fix the record", "value", "_raw"
    )
    # an unreadable device charting ends the state before it (import.md §2); other values are skipped
    entries = entries.filter(pl.col("_ok") | (pl.col("column") == "o2_device"))
    is_boolean = pl.col("column").is_in([n for n, c in contract.columns.items() if c.kind == "boolean"])
    text = (
        pl.when(~pl.col("_ok"))
        .then(None)
        .when(is_boolean & pl.col("_word").is_in(list(_YES)))
        .then(pl.lit("yes"))
        .when(is_boolean)
        .then(pl.lit("no"))
        .when(pl.col("column").is_in(checked))
        .then(pl.col("_word"))
        .otherwise(pl.col("_raw"))
    )
    return entries.with_columns(
        kind=pl.when(pl.col("column").is_in(STATE_COLUMNS)).then(pl.lit("state")).otherwise(pl.lit("measure")),
        text=text,
        number=pl.lit(None, dtype=pl.Float64),
        unit=pl.lit(None, dtype=pl.String),
        source=pl.col("_src"),
    ).pipe(conform)


def _methods(entries: pl.DataFrame, targets: list[Target], codes: FhirCodes, contract: Contract, out: Read) -> pl.DataFrame:
    """Observation.method read into the column its target names (MRD: flow, ngs, pcr)."""
    with_method = [i for i, t in enumerate(targets) if t.method is not None]
    chosen = entries.filter(pl.col("_t").is_in(with_method) & pl.col("method").is_not_null() & (pl.col("_part") == 0))
    if not chosen.height:
        return empty()
    keys = _value_keys(targets, codes, contract, method=True)
    coded = _coded_value(chosen, "method", keys, codes)
    columns = pl.DataFrame(
        {"_t": with_method, "_mcol": [targets[i].method.column for i in with_method]},  # type: ignore[union-attr]
        schema={"_t": pl.Int64, "_mcol": pl.String},
    )
    chosen = chosen.join(coded, on="_eid", how="left").join(columns, on="_t")
    concept = pl.col("method")
    written = pl.coalesce(
        pl.col("_coded"), concept.struct.field("text"), concept.struct.field("coding").list.first().struct.field("code")
    )
    chosen = chosen.with_columns(
        _raw=written, _word=written.str.strip_chars().str.to_lowercase().str.replace_all(r"[\s\-]+", "_")
    )
    allowed = [(name, w) for name, c in contract.columns.items() if c.kind == "enum" for w in c.values]
    words = pl.DataFrame(allowed, schema={"_mcol": pl.String, "_word": pl.String}, orient="row").with_columns(_ok=pl.lit(True))
    chosen = chosen.join(words, on=["_mcol", "_word"], how="left")
    _problems(
        out,
        chosen.filter(pl.col("_ok").is_null()),
        "is not a method this mapping knows (the value itself was read)",
        "method",
        "_raw",
    )
    chosen = chosen.filter(pl.col("_ok").is_not_null())
    return chosen.select(
        "patient_id",
        "stamp",
        pl.col("_mcol").alias("column"),
        pl.col("_word").alias("text"),
        pl.lit("measure").alias("kind"),
        pl.col("_src").alias("source"),
    ).pipe(conform)


# --- MedicationAdministration ---------------------------------------------------------------


def _referenced_codes(frame: pl.DataFrame, reference: pl.Expr, kind: str, concept: str, resources: pl.DataFrame) -> pl.DataFrame:
    """_src and the CodeableConcept (as _concept) of the resource each record references:
    "<kind>/<id>" among the resources read, or "#id" contained in the record."""
    refs = frame.select("_src", reference.str.strip_chars().alias("_ref"), "contained").filter(pl.col("_ref").is_not_null())
    listed = resources.filter(pl.col("resourceType") == kind).select(
        pl.concat_str([pl.lit(f"{kind}/"), pl.col("id")]).alias("_key"), pl.col(concept).alias("_concept")
    )
    outside = refs.with_columns(_key=pl.col("_ref").str.extract(rf"((?:^|/){kind}/[^/]+)", 1).str.strip_chars_start("/")).join(
        listed, on="_key", how="inner"
    )
    inside = (
        refs.filter(pl.col("_ref").str.starts_with("#"))
        .explode("contained")
        .filter(pl.col("contained").struct.field("resourceType") == kind)
        .filter(pl.concat_str([pl.lit("#"), pl.col("contained").struct.field("id")]) == pl.col("_ref"))
        .select("_src", pl.col("contained").struct.field(concept).alias("_concept"))
    )
    return pl.concat([outside.select("_src", "_concept"), inside]).unique("_src", keep="first")


def read_medications(frame: pl.DataFrame, resources: pl.DataFrame, codes: FhirCodes, naive: str, out: Read) -> pl.DataFrame:
    if not frame.height:
        return empty()
    referenced = _referenced_codes(
        frame, pl.col("medicationReference").struct.field("reference"), "Medication", "code", resources
    )
    frame = frame.join(referenced, on="_src", how="left").with_columns(
        _drug=pl.coalesce(pl.col("medicationCodeableConcept"), pl.col("_concept"))
    )
    table, targets = _code_table(codes.medications)
    codings = _codings(frame, pl.col("_drug"), "_src")
    matched = _match(codings, table, "_src", codes.column_systems)
    _unread_note(out, "MedicationAdministrations", codings, frame.join(matched, on="_src", how="anti"), "_src")
    frame = frame.join(matched.select("_src", "_t", "column"), on="_src", how="inner")
    if not frame.height:
        return empty()
    meta = pl.DataFrame(
        {
            "_t": list(range(len(targets))),
            "agent": [t.agent for t in targets],
            "_indication": [t.indication for t in targets],
        },
        schema={"_t": pl.Int64, "agent": pl.String, "_indication": pl.String},
    )
    frame = frame.join(meta, on="_t", how="left")
    frame = _for_indication(frame, codes, out)
    dose = pl.col("dosage").struct.field("dose").struct.field("value")
    rate = pl.col("dosage").struct.field("rateQuantity").struct.field("value")
    zero = frame.filter((dose == 0) | (rate == 0))
    if zero.height:
        out.notes.append(f"{zero.height} MedicationAdministrations with a dose or rate of 0 were not counted as given or running")
    frame = frame.filter(~((dose == 0) | (rate == 0)).fill_null(False))
    start = pl.col("effectivePeriod").struct.field("start").str.strip_chars()
    end = pl.col("effectivePeriod").struct.field("end").str.strip_chars()
    at = pl.col("effectiveDateTime").str.strip_chars()
    drips = frame.filter(pl.col("column").is_in(DRIP_COLUMNS))
    boluses = drips.filter(start.is_null())
    instants = drips.filter(_utc_us(start) == _utc_us(end)).height
    if boluses.height or instants:
        out.notes.append(
            f"{boluses.height + instants} vasopressor administrations without a period (boluses) do not count as running"
        )
    drips = drips.filter(start.is_not_null()).with_columns(_from=_utc_us(start), _to=_utc_us(end))
    backwards = drips.filter(pl.col("_to") < pl.col("_from")).with_columns(_end=end)
    _problems(out, backwards, "effectivePeriod ends before it starts: read from its start only", "effectivePeriod.end", "_end")
    end = pl.when(pl.col("_to").is_null() | (pl.col("_to") > pl.col("_from"))).then(end)
    # a period of no length is an administration at one instant: not a running drip
    drips = drips.filter((pl.col("_to") != pl.col("_from")).fill_null(True))
    # each administration is its own order: an agent runs while any of them runs (import.md §8)
    order = pl.concat_str([pl.coalesce(pl.col("request").struct.field("reference"), pl.lit("")), pl.lit("#"), pl.col("_src")])
    starts = drips.select(
        "patient_id",
        start.alias("stamp"),
        "column",
        "agent",
        pl.lit("start").alias("kind"),
        order.alias("order_id"),
        pl.col("_src").alias("source"),
    )
    stops = drips.filter(end.is_not_null()).select(
        "patient_id",
        end.alias("stamp"),
        "column",
        "agent",
        pl.lit("stop").alias("kind"),
        order.alias("order_id"),
        pl.col("_src").alias("source"),
    )
    given = frame.filter(~pl.col("column").is_in(DRIP_COLUMNS)).with_columns(stamp=pl.coalesce(at, start))
    untimed = given.filter(pl.col("stamp").is_null())
    _problems(
        out,
        untimed.with_columns(_none=pl.lit("")),
        "a MedicationAdministration without effective[x]: record skipped",
        "effective",
        "_none",
    )
    given = given.filter(pl.col("stamp").is_not_null()).select(
        "patient_id",
        "stamp",
        "column",
        "agent",
        pl.lit("given").alias("kind"),
        pl.lit("yes").alias("text"),
        pl.col("_src").alias("source"),
    )
    return pl.concat([conform(starts), conform(stops), conform(given)]).with_columns(naive=pl.lit(naive))


def _for_indication(frame: pl.DataFrame, codes: FhirCodes, out: Read) -> pl.DataFrame:
    """A drug with an indication filter (corticosteroids: CRS or ICANS, contract §1) counts when
    no reason is stated, or when a stated reason is one of the indication's codes or words;
    a drug given for another stated reason (premedication, GVHD, ...) is not counted."""
    filtered = frame.filter(pl.col("_indication").is_not_null())
    if not filtered.height:
        return frame
    reasons = (
        filtered.select("_src", "_indication", "reasonCode").explode("reasonCode").filter(pl.col("reasonCode").is_not_null())
    )
    stated = filtered.select("_src", "_indication", "reasonReference").explode("reasonReference")
    # a reason referenced without a display cannot be read: as if no reason were stated
    stated = stated.select("_src", "_indication", pl.col("reasonReference").struct.field("display").alias("_text")).filter(
        pl.col("_text").is_not_null()
    )
    coded = reasons.select("_src", "_indication", pl.col("reasonCode").struct.field("coding").alias("_coding")).explode("_coding")
    coded = coded.filter(pl.col("_coding").is_not_null()).select(
        "_src",
        "_indication",
        pl.col("_coding").struct.field("system").str.strip_chars().str.strip_chars_end("/").str.to_lowercase().alias("_system"),
        pl.col("_coding").struct.field("code").str.strip_chars().alias("_code"),
        pl.col("_coding").struct.field("display").alias("_text"),
    )
    texts = pl.concat(
        [
            reasons.select("_src", "_indication", pl.col("reasonCode").struct.field("text").alias("_text")),
            coded.select("_src", "_indication", "_text"),
            stated,
        ]
    ).with_columns(_text=pl.col("_text").str.to_lowercase())
    fits = []
    for name, indication in codes.indications.items():
        for system, code in indication.codes:
            test = pl.col("_code").str.starts_with(code[:-1]) if code.endswith("*") else pl.col("_code") == code
            fits.append(coded.filter((pl.col("_indication") == name) & (pl.col("_system") == system) & test).select("_src"))
        for word in indication.words:
            pattern = rf"(^|[^a-z0-9]){re.escape(word)}($|[^a-z0-9])"
            fits.append(texts.filter((pl.col("_indication") == name) & pl.col("_text").str.contains(pattern)).select("_src"))
    fitting = pl.concat(fits).unique() if fits else pl.DataFrame(schema={"_src": pl.String})
    with_reason = pl.concat([reasons.select("_src"), stated.select("_src")]).unique()
    other = filtered.join(with_reason, on="_src", how="semi").join(fitting, on="_src", how="anti")
    if other.height:
        out.notes.append(
            f"{other.height} administrations given for another stated reason than their indication were not counted "
            f"({', '.join(sorted(set(other['column'].to_list())))})"
        )
    return frame.join(other.select("_src"), on="_src", how="anti")


# --- Oxygen intervals: Procedure and DeviceUseStatement -------------------------------------

# a charting holds at most device_max_carry_hours (24 h by default): an interval longer than
# this is charted again inside, at a vital-sign instant when there is one (import.md §2)
RECHART_US = 12 * 3_600_000_000


def _intervals(
    frame: pl.DataFrame,
    concept: pl.Expr,
    table: dict[tuple[str, str], str],
    what: str,
    codes: FhirCodes,
    out: Read,
    period: str,
    instant: str,
) -> pl.DataFrame:
    """patient_id, device, start, end (stamps), source: one row per oxygen interval."""
    if not frame.height:
        return pl.DataFrame(
            schema={"patient_id": pl.String, "device": pl.String, "start": pl.String, "end": pl.String, "source": pl.String}
        )
    listed = list(table.items())
    lookup = pl.DataFrame(
        {"_system": [s for (s, _), _ in listed], "_code": [c for (_, c), _ in listed], "_device": [d for _, d in listed]},
        schema={"_system": pl.String, "_code": pl.String, "_device": pl.String},
    )
    frame = frame.with_columns(_concept=concept)
    codings = _codings(frame, pl.col("_concept"), "_src")
    matched = _match(codings, lookup, "_src", codes.column_systems)
    unmatched = frame.join(matched, on="_src", how="anti")
    foreign = unmatched.join(
        codings.filter(pl.col("_system").is_in(list(codes.column_systems))).unique("_src", keep="first"), on="_src"
    )
    _problems(
        out,
        foreign.with_columns(_shown=pl.concat_str([pl.col("_system"), pl.lit("|"), pl.col("_code")])),
        "a code of the carscore code system that is not an o2_device value: record skipped",
        "code",
        "_shown",
    )
    _unread_note(out, what, codings, unmatched.join(foreign, on="_src", how="anti"), "_src")
    frame = frame.join(matched.select("_src", "_device"), on="_src", how="inner")
    start = pl.coalesce(pl.col(period).struct.field("start"), pl.col(instant)).str.strip_chars()
    untimed = frame.filter(start.is_null())
    _problems(out, untimed.with_columns(_none=pl.lit("")), f"{what} without a time: record skipped", period, "_none")
    return frame.filter(start.is_not_null()).select(
        "patient_id",
        pl.col("_device").alias("device"),
        start.alias("start"),
        pl.col(period).struct.field("end").str.strip_chars().alias("end"),
        pl.col("_src").alias("source"),
    )


def _stamp_of(utc_us: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(microseconds=int(utc_us))).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Span:
    start: int  # UTC microseconds
    end: int | None  # None: still running when exported
    rank: int  # place in the contract's o2_device list: the more intensive, the higher
    device: str
    source: str


def _live(spans: list[_Span], t: int) -> list[_Span]:
    return [sp for sp in spans if sp.start <= t and (sp.end is None or t < sp.end)]


def _device_at(spans: list[_Span], t: int) -> _Span | None:
    """The most intensive device running at t (import.md §2: two devices, the more intensive)."""
    live = _live(spans, t)
    return max(live, key=lambda sp: (sp.rank, -sp.start)) if live else None


def _chartings(spans: list[_Span], complete: bool) -> tuple[list[tuple[int, str, str]], int]:
    """(instant, device, source) at each change of the device in force, and how many
    boundaries found two devices running together."""
    boundaries = sorted({sp.start for sp in spans} | {sp.end for sp in spans if sp.end is not None})
    current: str | None = None
    changes, together = [], 0
    for t in boundaries:
        span = _device_at(spans, t)
        if span is None:
            if not complete:
                current = None
                continue
            ended = [sp for sp in spans if sp.end == t]
            device, source = "none", max(ended, key=lambda sp: sp.rank).source if ended else ""
        else:
            device, source = span.device, span.source
            together += any(sp.device != device for sp in _live(spans, t))
        if device != current:
            changes.append((t, device, source))
            current = device
    return changes, together


def oxygen_states(
    intervals: pl.DataFrame,
    anchors: pl.DataFrame,
    ranks: dict[str, int],
    complete: bool,
    naive: str,
    out: Read,
) -> pl.DataFrame:
    """State events of the oxygen intervals [start, end): at each boundary the most intensive
    device running (a hand-over at one instant is no gap), 'none' when none runs and the
    source is complete, and the device charted again inside long intervals (RECHART_US).

    ``anchors`` (patient_id, _at, stamp) are the instants that carry held states (vital signs,
    state events, drip starts and stops). Outside every interval the rows' builder writes
    ``Read.outside`` (none) where no state is held."""
    if not intervals.height:
        return empty()
    intervals = intervals.with_columns(_from=_utc_us(pl.col("start")), _to=_utc_us(pl.col("end")))
    placed = pl.col("_from").is_not_null() & (pl.col("end").is_null() | pl.col("_to").is_not_null())
    events: list[dict[str, Any]] = []
    # a time that cannot be placed (no offset, a date alone) is passed on for the core to judge
    for row in intervals.filter(~placed).iter_rows(named=True):
        events.append({"patient_id": row["patient_id"], "stamp": row["start"], "text": row["device"], "source": row["source"]})
        if row["end"] and complete:
            events.append({"patient_id": row["patient_id"], "stamp": row["end"], "text": "none", "source": row["source"]})
    anchor_at: dict[str, tuple[np.ndarray, list[str]]] = {}
    for (pid,), group in anchors.sort("_at").group_by(["patient_id"], maintain_order=True):
        anchor_at[str(pid)] = (group["_at"].to_numpy(), group["stamp"].to_list())
    together = 0
    for (pid,), group in intervals.filter(placed).sort("_from").group_by(["patient_id"], maintain_order=True):
        rows = list(group.iter_rows(named=True))
        spans = [_Span(r["_from"], r["_to"], ranks.get(r["device"], 0), r["device"], r["source"]) for r in rows]
        stamps: dict[int, str] = {}
        for r in rows:
            stamps.setdefault(r["_from"], r["start"])
            if r["_to"] is not None:
                stamps.setdefault(r["_to"], r["end"])
        changes, overlapping = _chartings(spans, complete)
        together += overlapping
        times, texts = anchor_at.get(str(pid), (np.zeros(0, dtype=np.int64), []))
        for i, (t, device, source) in enumerate(changes):
            events.append({"patient_id": pid, "stamp": stamps[t], "text": device, "source": source})
            if device == "none":
                continue
            until = changes[i + 1][0] if i + 1 < len(changes) else None
            if until is None:
                running = _device_at(spans, t)
                until = running.end if running is not None else None
            previous = t
            while until is not None and until - previous > RECHART_US:
                low = np.searchsorted(times, previous, side="right")
                high = np.searchsorted(times, min(previous + RECHART_US, until - 1), side="right")
                if high > low:
                    previous, stamp = int(times[high - 1]), texts[high - 1]
                else:
                    previous += RECHART_US
                    stamp = _stamp_of(previous)
                running = _device_at(spans, previous)
                cited = running.source if running is not None else source
                events.append({"patient_id": pid, "stamp": stamp, "text": device, "source": cited})
    if together:
        out.notes.append(f"warning: {together} times two oxygen devices were in force together: the more intensive was taken")
    frame = pl.DataFrame(events, schema={"patient_id": pl.String, "stamp": pl.String, "text": pl.String, "source": pl.String})
    return conform(frame.with_columns(column=pl.lit("o2_device"), kind=pl.lit("state"), naive=pl.lit(naive)))


# --- the reader -------------------------------------------------------------------------------


def load_resources(files: list[Path], out: Read) -> pl.DataFrame:
    """Every resource of the files, one version per id, with _src "file:line#Type/id"."""
    frames = [read_ndjson(path, out).with_columns(_file=pl.lit(path.name)) for path in files]
    resources = pl.concat(frames).with_columns(_seq=pl.int_range(pl.len(), dtype=pl.Int64))
    resources = resources.with_columns(
        resourceType=pl.col("resourceType").str.strip_chars(),
        id=pl.col("id").str.strip_chars(),
        _src=pl.concat_str(
            [
                pl.col("_file"),
                pl.lit(":"),
                pl.col("_line").cast(pl.String),
                pl.lit("#"),
                pl.coalesce("resourceType", pl.lit("?")),
                pl.when(pl.col("id").is_not_null()).then(pl.concat_str([pl.lit("/"), pl.col("id")])).otherwise(pl.lit("")),
            ]
        ),
    )
    resources = latest_versions(resources, out)
    other = resources.filter(~pl.col("resourceType").is_in(list(READ_TYPES)).fill_null(True))
    if other.height:
        listed = ", ".join(
            f"{t or 'no resourceType'} ({n})"
            for t, n in other.group_by("resourceType").len().sort("len", descending=True).iter_rows()
        )
        out.notes.append(f"{other.height} resources of types not read were skipped: {listed}")
    patients = resources.filter(pl.col("resourceType") == "Patient").height
    if patients:
        out.notes.append(f"{patients} Patient resources read (patient_id = Patient.id)")
    return resources.with_columns(patient_id=_patient(pl.col("subject").struct.field("reference")))


def read_oxygen(
    records: pl.DataFrame, carrying: pl.DataFrame, codes: FhirCodes, contract: Contract, naive: str, out: Read
) -> pl.DataFrame:
    """Procedure and DeviceUseStatement intervals as o2_device state events."""
    procedures = _intervals(
        _status(records.filter(pl.col("resourceType") == "Procedure"), "Procedure", out),
        pl.col("code"),
        codes.procedures,
        "Procedures",
        codes,
        out,
        "performedPeriod",
        "performedDateTime",
    )
    statements = _status(records.filter(pl.col("resourceType") == "DeviceUseStatement"), "DeviceUseStatement", out)
    device_types = _referenced_codes(statements, pl.col("device").struct.field("reference"), "Device", "type", records)
    devices = _intervals(
        statements.join(device_types, on="_src", how="left"),
        pl.col("_concept"),
        codes.devices,
        "DeviceUseStatements",
        codes,
        out,
        "timingPeriod",
        "timingDateTime",
    )
    anchors = (
        carrying.select("patient_id", "stamp", _at=_utc_us(pl.col("stamp")))
        .filter(pl.col("_at").is_not_null())
        .unique(["patient_id", "_at"], keep="first", maintain_order=True)
    )
    ranks = {d: i for i, d in enumerate(contract.columns["o2_device"].values)}
    intervals = pl.concat([procedures, devices])
    if codes.complete and intervals.height:
        # an interval source is complete: outside its intervals the patient breathes room air
        out.outside["o2_device"] = "none"
    return oxygen_states(intervals, anchors, ranks, codes.complete, naive, out)


def read_fhir(mapping: Mapping, paths: list[str], contract: Contract) -> Read:
    codes = fhir_codes(mapping, contract)
    out = Read(empty())
    files = ndjson_files(paths, out)
    if not files:
        out.problems.append(InputProblem(", ".join(paths), "no .ndjson files among the sources", 0))
        return out
    records = load_resources(files, out)
    naive = mapping.naive_time
    observed = _status(records.filter(pl.col("resourceType") == "Observation"), "Observation", out)
    observations = read_observations(observed, codes, contract, naive, out)
    administered = records.filter(pl.col("resourceType") == "MedicationAdministration")
    medications = read_medications(_status(administered, "MedicationAdministration", out), records, codes, naive, out)
    # a medication source is present: no drip running means 0 vasopressors (import.md §2)
    out.medications_read = administered.height > 0
    # the instants whose rows carry held states: vital signs, state events, drip starts and stops
    carrying = pl.concat(
        [
            observations.filter(pl.col("column").is_in(VITAL_COLUMNS) | (pl.col("kind") == "state")),
            medications.filter(pl.col("kind").is_in(["start", "stop"])),
        ]
    )
    oxygen = read_oxygen(records, carrying, codes, contract, naive, out)
    events = pl.concat([observations, medications, oxygen])
    unique = events.unique([c for c in events.columns if c != "source"], keep="first", maintain_order=True)
    if unique.height < events.height:
        out.notes.append(f"{events.height - unique.height} identical records (same patient, time, column and value) were dropped")
    out.events = unique
    return out
