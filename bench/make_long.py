#!/usr/bin/env python3
"""A synthetic CLIF 2.1 export of any size, for the import benchmark.

    python bench/make_long.py --rows 10000000 --out clif_long

Writes clif_hospitalization.csv, clif_vitals.csv (most of the rows: hourly
temperature, systolic pressure and heart rate), clif_respiratory_support.csv
(a device charting every 4 hours), clif_medication_admin_continuous.csv
(norepinephrine and vasopressin drips with start and stop) and clif_labs.csv
(daily counts and CRP), all in UTC, plus infusions.csv. Values are random but
plausible; nothing is clinical truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

DAYS = 40
VITALS_PER_HOUR = 3  # temperature, systolic pressure, heart rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="about how many vital-sign rows")
    ap.add_argument("--out", required=True, help="folder to write the tables to")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    patients = max(1, args.rows // (DAYS * 24 * VITALS_PER_HOUR))
    ids = [f"P{i:06d}" for i in range(patients)]
    start = np.datetime64("2024-01-01T12:00") + (rng.integers(0, 300, patients) * 24 * 60).astype("timedelta64[m]")

    pl.DataFrame({"patient_id": ids, "hospitalization_id": [f"H{i:06d}" for i in range(patients)]}).write_csv(
        out / "clif_hospitalization.csv"
    )
    pl.DataFrame(
        {"patient_id": ids, "infusion": 1, "infusion_datetime": [str(s + np.timedelta64(5, "D")) + "Z" for s in start]}
    ).write_csv(out / "infusions.csv")

    hours = DAYS * 24
    stay = np.repeat(np.arange(patients), hours)
    when = np.repeat(start, hours) + np.tile(np.arange(hours), patients).astype("timedelta64[h]")
    stamps = pl.Series(when.astype("datetime64[s]").astype(str)).str.replace("T", " ") + "+00:00"
    fever = rng.random(len(stay)) < 0.08
    temp = np.round(np.where(fever, rng.uniform(38.0, 40.0, len(stay)), rng.uniform(36.2, 37.8, len(stay))), 1)
    sbp = rng.integers(70, 150, len(stay))
    hr = rng.integers(60, 140, len(stay))
    hosp = pl.Series([f"H{i:06d}" for i in range(patients)])[stay]
    vitals = pl.concat(
        [
            pl.DataFrame({"hospitalization_id": hosp, "recorded_dttm": stamps, "vital_category": name, "vital_value": values})
            for name, values in (("temp_c", temp), ("sbp", sbp), ("heart_rate", hr))
        ],
        how="vertical_relaxed",
    )
    vitals.write_csv(out / "clif_vitals.csv")

    every4 = np.arange(0, len(stay), 4)
    devices = np.array(["Room Air", "Nasal Cannula", "High Flow NC", "Room Air", "Room Air"])[rng.integers(0, 5, len(every4))]
    pl.DataFrame(
        {
            "hospitalization_id": hosp[every4],
            "recorded_dttm": stamps[every4],
            "device_category": devices,
            "lpm_set": pl.Series(np.where(devices == "Nasal Cannula", 3.0, np.nan)).fill_nan(None),
        }
    ).write_csv(out / "clif_respiratory_support.csv")

    drips = []
    for agent, share in (("norepinephrine", 0.3), ("vasopressin", 0.1)):
        who = np.flatnonzero(rng.random(patients) < share)
        begin = start[who] + (rng.integers(24, 200, len(who))).astype("timedelta64[h]")
        end = begin + (rng.integers(2, 40, len(who))).astype("timedelta64[h]")
        for action, moment in (("start", begin), ("stop", end)):
            drips.append(
                pl.DataFrame(
                    {
                        "hospitalization_id": [f"H{i:06d}" for i in who],
                        "med_order_id": [f"{agent}-{i}" for i in who],
                        "admin_dttm": pl.Series(moment.astype("datetime64[s]").astype(str)).str.replace("T", " ") + "+00:00",
                        "med_category": agent,
                        "mar_action_category": action,
                    }
                )
            )
    pl.concat(drips).write_csv(out / "clif_medication_admin_continuous.csv")

    daily = np.arange(0, len(stay), 24)
    labs = pl.concat(
        [
            pl.DataFrame(
                {
                    "hospitalization_id": hosp[daily],
                    "lab_collect_dttm": stamps[daily],
                    "lab_category": name,
                    "lab_value_numeric": np.round(rng.uniform(low, high, len(daily)), 2),
                    "reference_unit": unit,
                    "lab_specimen_category": "blood/plasma/serum",
                }
            )
            for name, low, high, unit in (
                ("neutrophils_absolute", 0.05, 6.0, "10^3/uL"),
                ("platelet_count", 10, 300, "10^3/uL"),
                ("crp", 0.1, 30, "mg/dL"),
            )
        ]
    )
    labs.write_csv(out / "clif_labs.csv")
    print(f"{out}: {patients} patients, {vitals.height:,} vital-sign rows")


if __name__ == "__main__":
    main()
