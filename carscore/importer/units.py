"""Units of long exports converted to the contract's (import.md §4), from
the unit written on each record. A unit not in the table is an error naming
the record, never a guess."""

from __future__ import annotations

import polars as pl

# (column, unit as written, lower-cased, spaces removed) -> (factor, offset):
# contract value = (value + offset) * factor
_SAME = (1.0, 0.0)
_FAHRENHEIT = (5 / 9, -32.0)
_COUNTS = {
    "10*3/ul": _SAME,
    "10^3/ul": _SAME,
    "10^3/µl": _SAME,
    "10*9/l": _SAME,
    "10^9/l": _SAME,
    "k/ul": _SAME,
    "k/µl": _SAME,
    "x10^9/l": _SAME,
    "x10e9/l": _SAME,
    "thou/ul": _SAME,
    "/ul": (0.001, 0.0),
    "/µl": (0.001, 0.0),
    "cells/ul": (0.001, 0.0),
    "cells/µl": (0.001, 0.0),
    "{cells}/ul": (0.001, 0.0),
}
_CSF = {"/ul": _SAME, "/µl": _SAME, "cells/ul": _SAME, "cells/µl": _SAME, "{cells}/ul": _SAME, "10*6/l": _SAME, "10^6/l": _SAME}
UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "temp_c": {
        "cel": _SAME,
        "°c": _SAME,
        "c": _SAME,
        "degc": _SAME,
        "[degf]": _FAHRENHEIT,
        "°f": _FAHRENHEIT,
        "f": _FAHRENHEIT,
        "degf": _FAHRENHEIT,
    },
    "anc": _COUNTS,
    "wbc": _COUNTS,
    "platelets": _COUNTS,
    "rbc": {"10*6/ul": _SAME, "10^6/ul": _SAME, "10*12/l": _SAME, "10^12/l": _SAME, "m/ul": _SAME},
    "crp": {"mg/l": _SAME, "mg/dl": (10.0, 0.0)},
    "hemoglobin": {"g/l": _SAME, "g/dl": (10.0, 0.0)},
    "fibrinogen": {"g/l": _SAME, "mg/dl": (0.01, 0.0)},
    "ferritin": {"ng/ml": _SAME, "ug/l": _SAME, "µg/l": _SAME},
    "il6": {"pg/ml": _SAME, "ng/l": _SAME},
    "csf_wbc": _CSF,
    "csf_rbc": _CSF,
    "fio2_pct": {"%": _SAME, "fraction": (100.0, 0.0), "1": (100.0, 0.0)},
    "o2_flow_lpm": {"l/min": _SAME, "lpm": _SAME, "l/min.": _SAME},
    "car_copies": {
        "copies/ug": _SAME,
        "copies/µg": _SAME,
        "{copies}/ug": _SAME,
        "copies/ugdna": _SAME,
        "copies/µgdna": _SAME,
        "{copies}/ug{dna}": _SAME,
    },
    "sbp": {"mm[hg]": _SAME, "mmhg": _SAME},
    "bm_blasts_pct": {"%": _SAME},
    "pb_blasts_pct": {"%": _SAME},
    "bm_mrd_pct": {"%": _SAME},
    "b_cells_pct": {"%": _SAME},
    "alt_u_l": {"u/l": _SAME, "iu/l": _SAME},
    "ast_u_l": {"u/l": _SAME, "iu/l": _SAME},
    "ldh_u_l": {"u/l": _SAME, "iu/l": _SAME},
    "triglycerides": {"mmol/l": _SAME, "mg/dl": (0.01129, 0.0)},
}


def normal_unit(unit: pl.Expr) -> pl.Expr:
    return unit.str.strip_chars().str.to_lowercase().str.replace_all(r"\s+", "")


def convert(events: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Numbers in the contract's units, rounded to 0.01 (import.md §4); and the
    events whose unit is not known for their column."""
    keys, factors, offsets = [], [], []
    for column, table in UNITS.items():
        for unit, (factor, offset) in table.items():
            keys.append(f"{column}|{unit}")
            factors.append(factor)
            offsets.append(offset)
    lookup = pl.DataFrame({"_key": keys, "_factor": factors, "_offset": offsets})
    numeric = pl.col("number").is_not_null() & pl.col("unit").is_not_null() & (normal_unit(pl.col("unit")) != "")
    keyed = events.with_columns(
        _key=pl.when(numeric).then(pl.concat_str([pl.col("column"), pl.lit("|"), normal_unit(pl.col("unit"))]))
    ).join(lookup, on="_key", how="left")
    unknown = keyed.filter(pl.col("_key").is_not_null() & pl.col("_factor").is_null())
    converted = keyed.filter(pl.col("_key").is_null() | pl.col("_factor").is_not_null()).with_columns(
        number=pl.when(pl.col("_factor").is_not_null())
        .then(((pl.col("number") + pl.col("_offset")) * pl.col("_factor")).round(2))
        .otherwise(pl.col("number"))
    )
    return converted.drop("_key", "_factor", "_offset"), unknown.drop("_key", "_factor", "_offset")
