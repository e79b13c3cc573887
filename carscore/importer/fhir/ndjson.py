"""FHIR bulk data files (NDJSON, one resource per line): found among the sources and
decoded by polars into one frame of the fields read, whatever resource types a file
mixes; a line that is not a JSON object is a problem, the rest is read."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl

from carscore.errors import InputProblem, UsageError
from carscore.importer.events import Read
from carscore.importer.fhir.resources import PROBLEMS_SHOWN

_CODING = pl.Struct({"system": pl.String, "code": pl.String, "display": pl.String})
_CONCEPT = pl.Struct({"coding": pl.List(_CODING), "text": pl.String})
_QUANTITY = pl.Struct({"value": pl.Float64, "comparator": pl.String, "unit": pl.String, "system": pl.String, "code": pl.String})
_PERIOD = pl.Struct({"start": pl.String, "end": pl.String})
_REFERENCE = pl.Struct({"reference": pl.String, "display": pl.String})
# value[x]: the types of an Observation's (and a component's) value that are read
VALUE_FIELDS = {
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
        **VALUE_FIELDS,
        "component": pl.List(pl.Struct({"code": _CONCEPT, **VALUE_FIELDS})),
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


def ndjson_files(paths: list[str], out: Read) -> list[Path]:
    """The .ndjson files among the files and folders given, each once; another file given by name is noted."""
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
    for number in bad[:PROBLEMS_SHOWN]:
        out.problems.append(InputProblem(path.name, "not a JSON object (one FHIR resource per line): line skipped", number))
    if len(bad) > PROBLEMS_SHOWN:
        out.problems.append(InputProblem(path.name, f"... and {len(bad) - PROBLEMS_SHOWN} more lines that are not JSON", 0))
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
