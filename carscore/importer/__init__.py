"""Import of long, timestamped exports (contract §4, import.md): sources are
read into events by a mapping file (a preset or a centre's own), then turned
into contract rows, one per patient per instant."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from carscore.contract import Contract, load_contract
from carscore.errors import InputProblem
from carscore.importer.clock import Zone
from carscore.importer.events import Read
from carscore.importer.files import find_files, read_text_table
from carscore.importer.infusions import read_infusions, with_source_ages
from carscore.importer.mapping import find_mapping, read_mapping
from carscore.importer.rows import build_rows
from carscore.importer.tables import read_table


@dataclass
class Imported:
    rows: pl.DataFrame  # contract rows as text cells, with day, time and source
    problems: list[InputProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def import_sources(
    paths: list[str],
    mapping_name: str,
    infusions_path: str,
    timezone: str | None = None,
    contract: Contract | None = None,
    device_hours: float | None = None,
) -> Imported:
    contract = contract or load_contract()
    mapping = read_mapping(find_mapping(mapping_name), set(contract.columns))
    zone = Zone(timezone) if timezone else None
    infusions = read_infusions(infusions_path, zone)
    if mapping.reader == "fhir":
        from carscore.importer.fhir import read_fhir

        read = read_fhir(mapping, paths, contract)
    else:
        read = read_tables(mapping, paths, contract)
    infusions = with_source_ages(infusions, read.births)
    built = build_rows(
        read.events,
        infusions,
        zone,
        device_hours=device_hours if device_hours is not None else mapping.device_max_carry_hours,
        medications_read=read.medications_read,
        contract=contract,
        outside=getattr(read, "outside", None),
    )
    return Imported(built.rows, infusions.problems + read.problems + built.problems, read.notes + built.notes)


def first_found(files: dict[str, Path], stems: list[str]) -> Path | None:
    """The first of the named tables among the files found (by lower-case stem)."""
    return next((files[s.lower()] for s in stems if s.lower() in files), None)


def read_tables(mapping, paths: list[str], contract: Contract) -> Read:  # type: ignore[no-untyped-def]
    files = find_files(paths)
    out = Read(pl.DataFrame())
    keys = None
    if mapping.patients:
        path = first_found(files, mapping.patient_files)
        if path is None:
            out.problems.append(
                InputProblem(", ".join(mapping.patient_files), "the table that gives each record's patient was not found", 0)
            )
        else:
            frame = read_text_table(path)
            keys = frame.select(
                pl.col(mapping.patients["key"]).str.strip_chars().alias("_key"),
                pl.col(mapping.patients["patient"]).str.strip_chars().alias("patient_id"),
            ).unique("_key", keep="first")
    if mapping.births:
        path = first_found(files, mapping.birth_files)
        if path is not None:
            out.births = read_text_table(path).select(
                pl.col(mapping.births["patient"]).str.strip_chars().alias("patient_id"),
                pl.col(mapping.births["birth_date"]).str.strip_chars().alias("birth_date"),
            )
    parts = []
    for table in mapping.tables.values():
        path = first_found(files, table.files)
        if path is None:
            out.notes.append(f"no {table.name} table among the sources (looked for {', '.join(table.files)})")
            continue
        frame = read_text_table(path)
        if table.key:
            if keys is None:
                continue
            frame = frame.with_columns(pl.col(table.key).str.strip_chars().alias("_key")).join(keys, on="_key", how="left")
            orphans = frame.filter(pl.col("patient_id").is_null())
            if orphans.height:
                out.problems.append(
                    InputProblem(
                        path.name,
                        f"{orphans.height} records whose {table.key} has no patient were skipped",
                        int(orphans["_line"][0]),
                        table.key,
                        orphans[table.key][0] or "",
                    )
                )
            frame = frame.filter(pl.col("patient_id").is_not_null())
            table_for_read = table
        else:
            table_for_read = table
        parts.append(read_table(table_for_read, path, frame, mapping, contract, out))
    from carscore.importer.events import conform, empty

    out.events = pl.concat([conform(p) for p in parts]) if parts else empty()
    return out
