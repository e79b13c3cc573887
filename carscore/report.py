"""Results as the data contract's JSON document (section 2) and as CSV rows.

The contract's keys are always present (null when unknown, or when the rule
set that fills them was not loaded), so that users' scripts can rely on them.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from carscore import __version__
from carscore.assess import Assessment
from carscore.compile import COURSE, DAY
from carscore.engine import Engine

DAY_KEYS = ["crs_grade", "icans_grade", "cns_status", "cns_substatus", "bm_response", "mrd_negative"]
REASON_KEYS = ["crs", "icans", "cns", "bm", "mrd"]
SUMMARY_KEYS = [
    "crs_max_grade",
    "crs_onset_day",
    "crs_last_day",
    "crs_days",
    "icans_max_grade",
    "icans_onset_day",
    "icans_last_day",
    "icans_days",
    "tocilizumab_first_day",
    "corticosteroids_first_day",
    "cns_status_baseline",
    "cns_remission_day",
    "cns_relapse_day",
    "best_bm_response",
    "mrd_negative_remission",
    "bm_relapse_day",
    "car_cmax",
    "car_tmax_day",
    "car_auc_0_28",
    "car_last_detected_day",
    "car_loss_day",
    "b_cell_recovery_day",
    "icaht_early_grade",
    "icaht_late_grade",
    "ticaht_early_grade",
    "ticaht_late_grade",
    "hematotox_censor_day",
    "car_hematotox_score",
    "car_hematotox_risk",
    "car_hematotox_validated_in",
    "iec_hs_suspected",
    "iec_hs_onset_day",
    "iec_hs_grade",
]


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return None
        if v.is_integer() and abs(v) < 2**53:
            return int(v)
    return v


def day_keys(a: Assessment) -> list[str]:
    return _day_keys(a.engine)


def _day_keys(engine: Engine) -> list[str]:
    return DAY_KEYS + [o.name for o in engine.plan.outputs if o.name not in DAY_KEYS]


def reason_keys(a: Assessment) -> list[str]:
    return _reason_keys(a.engine)


def _reason_keys(engine: Engine) -> list[str]:
    return REASON_KEYS + [k for k in engine.plan.reason_keys if k not in REASON_KEYS]


def summary_keys(a: Assessment) -> list[str]:
    return SUMMARY_KEYS + [k for k in a.engine.plan.summary_keys if k not in SUMMARY_KEYS]


def _with_missing(df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    missing = [pl.lit(None).alias(c) for c in columns if c not in df.columns]
    return df.with_columns(missing) if missing else df


def summary_rows(a: Assessment, keys: list[str] | None = None) -> list[dict[str, Any]]:
    """One mapping per assessed course: patient_id, infusion, file and the summary keys
    (built once per assessment; each call gets its own copies to change). ``keys``:
    only these summary keys, built afresh (a registry's cohort statistics read a
    dozen keys of two hundred thousand courses: all forty would take a gigabyte)."""
    if keys is not None:
        return _summary_rows(a, keys)
    if a.summary_cache is None:
        a.summary_cache = _summary_rows(a, summary_keys(a))
    return [dict(row) for row in a.summary_cache]


def _summary_rows(a: Assessment, keys: list[str]) -> list[dict[str, Any]]:
    table = _with_missing(a.summaries, keys).join(a.intake.courses, on=COURSE, how="left").sort(COURSE)
    table = table.select([COURSE, "patient_id", "infusion", "file", *keys])
    rows = table.to_dicts()
    # only a number that may not be finite or may be whole needs cleaning (_clean)
    for k in [name for name, dtype in table.schema.items() if dtype.is_float()]:
        for row in rows:
            row[k] = _clean(row[k])
    return rows


def day_rows(a: Assessment) -> dict[int, list[dict[str, Any]]]:
    """Per course, its days as contract mappings (day, grades, classes, flags, reasons)."""
    dk, rk = day_keys(a), reason_keys(a)
    reason_cols = [f"_reason_{k}" for k in rk]
    # days imported from long exports keep the source records of their values
    traced = ["source"] if "source" in a.days.columns and a.days["source"].null_count() < a.days.height else []
    table = _with_missing(a.days, [*dk, *reason_cols, "flags"]).select([COURSE, DAY, *dk, "flags", *reason_cols, *traced])
    out: dict[int, list[dict[str, Any]]] = {}
    columns = table.columns
    course_i = 0
    for row in table.iter_rows():
        rec = dict(zip(columns, row))
        course_i = rec.pop(COURSE)
        entry = {"day": rec.pop(DAY)}
        for k in dk:
            entry[k] = _clean(rec[k])
        entry["flags"] = list(rec["flags"] or [])
        entry["reasons"] = {k: rec[f"_reason_{k}"] for k in rk}
        if "source" in rec:
            entry["source"] = rec["source"] or None
        out.setdefault(course_i, []).append(entry)
    return out


def ruleset_info(a: Assessment) -> list[dict[str, Any]]:
    """Each rule set in use: id, version, citation, and where it comes from
    (path, sha256, builtin, changed_parameters; see rulesources.RuleSetSource)."""
    return rulesets_in_use(a.engine)


def rulesets_in_use(engine: Engine) -> list[dict[str, Any]]:
    """ruleset_info, known before anything is graded."""
    from carscore.rulesources import sources_of

    sources = sources_of(engine)
    out = []
    for rs in engine.rulesets:
        entry: dict[str, Any] = {"id": rs.id, "version": rs.version, "citation": rs.citation}
        src = sources.get(rs.id)
        entry |= src.as_dict() if src is not None else {"path": None, "sha256": None, "builtin": None, "changed_parameters": {}}
        out.append(entry)
    return out


def problem_list(a: Assessment) -> list[dict[str, Any]]:
    """Every problem (severity "error": what it concerns was not assessed) and
    every note (severity "note": nothing was left out, but the user should
    know), as {severity, file, row, column, value, message}."""
    out = [{"severity": "error", **p.as_dict()} for p in a.intake.problems]
    for note in a.intake.notes:
        if hasattr(note, "as_dict"):
            out.append({"severity": "note", **note.as_dict()})
        else:
            out.append({"severity": "note", "file": None, "row": None, "column": None, "value": None, "message": str(note)})
    return out


def build_document(a: Assessment, include_days: bool = True, cohort: dict | None = None) -> dict[str, Any]:
    days = day_rows(a) if include_days else {}
    patients = []
    for s in summary_rows(a):
        course = s.pop(COURSE)
        entry: dict[str, Any] = {"patient_id": s.pop("patient_id"), "infusion": s.pop("infusion"), "file": s.pop("file")}
        if include_days:
            entry["days"] = days.get(course, [])
        entry["summary"] = s
        patients.append(entry)
    return {"carscore": __version__, "rulesets": ruleset_info(a), "patients": patients, **document_tail(a, cohort)}


def document_tail(a: Assessment, cohort: dict | None = None) -> dict[str, Any]:
    """What follows the patients in the document: the cohort, the problems and notes."""
    tail: dict[str, Any] = {} if cohort is None else {"cohort": cohort}
    tail["problems"] = problem_list(a)
    # kept for the scripts that read it: the problems of severity "error", without the severity
    tail["errors"] = [p.as_dict() for p in a.intake.problems]
    return tail


def day_table_head(engine: Engine) -> bytes:
    """The header line of the day table's CSV (day_table), known before anything is graded."""
    columns = ["patient_id", "infusion", DAY, *_day_keys(engine), "flags", *(f"reason_{k}" for k in _reason_keys(engine))]
    return pl.DataFrame(schema=dict.fromkeys(columns, pl.String)).write_csv().encode("utf-8")


def write_day_rows(stream: Any, rows: pl.DataFrame) -> None:
    """Rows of the day table (day_table, with or without ``_course``) written
    to a binary stream as csv_text writes them, without the header."""
    spreadsheet_safe(rows.drop(COURSE, strict=False)).write_csv(stream, include_header=False)


def day_table(a: Assessment) -> pl.DataFrame:
    """One CSV row per course and day."""
    dk, rk = day_keys(a), reason_keys(a)
    reason_cols = [f"_reason_{k}" for k in rk]
    # every day row carries its course's patient_id and infusion from intake
    return _with_missing(a.days, [*dk, *reason_cols, "flags"]).select(
        "patient_id",
        "infusion",
        DAY,
        *dk,
        pl.col("flags").list.join(";").alias("flags"),
        *[pl.col(f"_reason_{k}").alias(f"reason_{k}") for k in rk],
    )


def summary_table(a: Assessment) -> pl.DataFrame:
    rows = summary_rows(a)
    keys = ["patient_id", "infusion", "file", *summary_keys(a)]
    if not rows:
        return pl.DataFrame(schema={k: pl.String for k in keys})
    return pl.DataFrame([{k: r.get(k) for k in keys} for r in rows], infer_schema_length=None)


# --- CSV for spreadsheets ------------------------------------------------------

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP
# "CSV injection"); the full-width forms are read as formulas by some too.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


def spreadsheet_safe(table: pl.DataFrame) -> pl.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading single
    quote (the OWASP convention), so that opening the CSV runs nothing. Numeric
    columns are left alone (day -5 stays -5), and so is a text cell that is a
    plain number such as "-5", which no spreadsheet reads as a formula."""
    guarded = []
    for name, dtype in table.schema.items():
        if dtype != pl.String:
            continue
        col = pl.col(name)
        risky = pl.any_horizontal([col.str.starts_with(s) for s in FORMULA_STARTS]) & ~col.str.contains(_PLAIN_NUMBER)
        guarded.append(pl.when(risky).then(pl.lit("'") + col).otherwise(col).alias(name))
    return table.with_columns(guarded) if guarded else table


def csv_text(table: pl.DataFrame) -> str:
    """A table as CSV text, safe to open in a spreadsheet (see spreadsheet_safe)."""
    return spreadsheet_safe(table).write_csv()
