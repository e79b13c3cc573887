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

The modules: codes.py (the mapping's sections), ndjson.py (the files), resources.py
(versions, status, citing), concepts.py (codings matched to codes), observations.py,
medications.py and oxygen.py (each resource type into events). This one loads the
resources and reads them.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from carscore.contract import Contract
from carscore.errors import InputProblem
from carscore.importer.events import VITAL_COLUMNS, Read, empty
from carscore.importer.fhir.codes import fhir_codes
from carscore.importer.fhir.medications import read_medications
from carscore.importer.fhir.ndjson import READ_TYPES, ndjson_files, read_ndjson
from carscore.importer.fhir.observations import read_observations
from carscore.importer.fhir.oxygen import read_oxygen
from carscore.importer.fhir.resources import latest_versions, records_that_count
from carscore.importer.mapping import Mapping


def _patient(reference: pl.Expr) -> pl.Expr:
    return reference.str.extract(r"(?:^|/)Patient/([^/]+)", 1)


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


def read_fhir(mapping: Mapping, paths: list[str], contract: Contract) -> Read:
    codes = fhir_codes(mapping, contract)
    out = Read(empty())
    files = ndjson_files(paths, out)
    if not files:
        out.problems.append(InputProblem(", ".join(paths), "no .ndjson files among the sources", 0))
        return out
    records = load_resources(files, out)
    out.births = records.filter((pl.col("resourceType") == "Patient") & pl.col("birthDate").is_not_null()).select(
        pl.col("id").alias("patient_id"), pl.col("birthDate").alias("birth_date")
    )
    naive = mapping.naive_time
    observed = records_that_count(records.filter(pl.col("resourceType") == "Observation"), "Observation", out)
    observations = read_observations(observed, codes, contract, naive, out)
    administered = records.filter(pl.col("resourceType") == "MedicationAdministration")
    medications = read_medications(records_that_count(administered, "MedicationAdministration", out), records, codes, naive, out)
    # a medication source is present: no drip running means 0 vasopressors (import.md §2)
    out.medications_read = administered.height > 0
    # the instants whose rows carry held states: vital signs, state events, drip starts and stops
    carrying = pl.concat(
        [
            observations.filter(pl.col("column").is_in(VITAL_COLUMNS) | (pl.col("kind") == "state")),
            medications.filter(pl.col("kind").is_in(["start", "stop"])),
        ]
    )
    oxygen = read_oxygen(records, carrying, codes, contract, naive, out, mapping.device_max_carry_hours)
    events = pl.concat([observations, medications, oxygen])
    unique = events.unique([c for c in events.columns if c != "source"], keep="first", maintain_order=True)
    if unique.height < events.height:
        out.notes.append(f"{events.height - unique.height} identical records (same patient, time, column and value) were dropped")
    out.events = unique
    return out
