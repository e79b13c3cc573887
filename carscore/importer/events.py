"""The common shape every source is read into before rows are built: one
event per source value (import.md §2).

Columns of an event table:

    patient_id  text
    stamp       text, the timestamp as written (ISO 8601; a date alone is allowed)
    naive       how a stamp without an offset is read: "utc", "local" or "error"
    column      the contract column the value belongs to
    number      the value when numeric (in ``unit``), else null
    text        the value when a word (yes/no, an enum word), else null
    unit        the unit written in the source (null: the column's own unit)
    kind        measure | state | start | stop | given
                  measure: a value observed at that instant
                  state:   a charted state held until the next charting (o2_device,
                           o2_flow_lpm, fio2_pct)
                  start / stop: a continuous drug's order running from / ending at
                           that instant (vasopressors and vasopressin)
                  given:   a drug given at that instant (text "yes")
    agent       the drug, for start/stop (norepinephrine, vasopressin, ...)
    order_id    the drug order the start/stop belongs to (an agent runs while any
                of its orders runs)
    source      where the value came from: "file:line" or "file:line#id"
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from carscore.errors import InputProblem

SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "stamp": pl.String(),
    "naive": pl.String(),
    "column": pl.String(),
    "number": pl.Float64(),
    "text": pl.String(),
    "unit": pl.String(),
    "kind": pl.String(),
    "agent": pl.String(),
    "order_id": pl.String(),
    "source": pl.String(),
}

KINDS = ("measure", "state", "start", "stop", "given")
# ASTCT counts every vasopressor agent except vasopressin (import.md §2)
VASOPRESSIN = "vasopressin"
STATE_COLUMNS = ("o2_device", "o2_flow_lpm", "fio2_pct")
DRIP_COLUMNS = ("vasopressors", "vasopressin")
# rows that carry the held states: vital-sign rows, state events and midnight rows,
# never rows holding only labs, scores, marrow, CSF or CAR copies (import.md §2)
VITAL_COLUMNS = ("temp_c", "sbp", "hypotension")


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Any reader's output, with every column of the schema in order."""
    missing = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in SCHEMA.items() if name not in frame.columns]
    frame = frame.with_columns(missing) if missing else frame
    return frame.select([pl.col(n).cast(t) for n, t in SCHEMA.items()])


@dataclass
class Read:
    """What a reader gives: its events, with the problems and notes of reading them."""

    events: pl.DataFrame
    problems: list[InputProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    medications_read: bool = False
    # state columns a complete interval source covers, and their value where no interval runs
    # (SDTM PR: o2_device none); the rows' builder applies it (see outside_values)
    outside: dict[str, str] = field(default_factory=dict)
    # birth dates the source gives (patient_id, birth_date as written): the age at
    # infusion where the infusions file gives none (import.md §1)
    births: pl.DataFrame | None = None
