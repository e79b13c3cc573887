#!/usr/bin/env python3
"""carscore benchmark: time grading and full cohort assessment against the
time pandas.read_csv needs only to read the same file, in the same run.

    python bench/benchmark.py                       # 20,000 patients x 50 days (~1M patient-days)
    python bench/benchmark.py --patients 2000       # a quicker run
    python bench/benchmark.py --split               # also the cohort split into one file per patient

The cohort is made by make_cohort.py from the shared benchmark folder (looked
for beside the checkout, or given with --generator). Figures go to stdout as
a small table; nothing is asserted: targets are read, not tested.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def find_generator(given: str | None) -> Path:
    candidates = [Path(given)] if given else [ROOT.parent / "shared" / "bench" / "make_cohort.py",
                                             ROOT / "bench" / "make_cohort.py"]
    for c in candidates:
        if c.is_file():
            return c
    sys.exit("make_cohort.py not found: pass --generator PATH")


def timed(label: str, fn, results: list) -> object:
    gc.collect()
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    results.append((label, seconds))
    print(f"  {label:<58} {seconds:8.2f} s", flush=True)
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=20000)
    ap.add_argument("--days", type=int, default=50)
    ap.add_argument("--generator", help="path to make_cohort.py")
    ap.add_argument("--workdir", help="where to write the cohort (default: a temporary folder)")
    ap.add_argument("--split", action="store_true", help="also assess the cohort as one file per patient")
    args = ap.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="carscore-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cohort = workdir / f"cohort_{args.patients}x{args.days}.csv"
    generator = find_generator(args.generator)
    if not cohort.exists():
        print(f"making {cohort} ...", flush=True)
        subprocess.run([sys.executable, str(generator), "--patients", str(args.patients), "--days", str(args.days),
                        "--out", str(cohort)], check=True)
    size_mb = cohort.stat().st_size / 1e6

    import pandas as pd
    import polars as pl

    from carscore import report
    from carscore.assess import assess_intake, load_engine
    from carscore.cohort import cohort_statistics
    from carscore.intake import read_paths

    results: list[tuple[str, float]] = []
    print(f"cohort: {cohort.name}, {size_mb:.0f} MB; {os.cpu_count()} cores; polars {pl.__version__}, "
          f"pandas {pd.__version__}")
    timed("pandas.read_csv (read only, the yardstick)", lambda: pd.read_csv(cohort), results)
    baseline = results[-1][1]

    engine = load_engine()
    crs_icans = load_engine([ROOT / "rules" / "astct_crs.yaml", ROOT / "rules" / "astct_icans.yaml"]
                            if (ROOT / "rules").is_dir() else None)

    def grade_crs_icans():
        intake = read_paths([str(cohort)], crs_icans.contract)
        return assess_intake(intake, crs_icans)

    a = timed("grade CRS + ICANS with reasons (read, parse, grade, word)", grade_crs_icans, results)
    days = a.days.height
    grade_seconds = results[-1][1]

    def full():
        intake = read_paths([str(cohort)], engine.contract)
        graded = assess_intake(intake, engine, reasons=False)
        stats = cohort_statistics(report.summary_rows(graded))
        doc = report.build_document(graded, include_days=False, cohort=stats)
        (workdir / "cohort.json").write_text(json.dumps(doc))
        return graded

    timed("full cohort: every rule set, summaries, statistics, JSON written", full, results)
    full_seconds = results[-1][1]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    split_seconds = None
    if args.split:
        folder = workdir / f"split_{args.patients}x{args.days}"
        if not folder.exists():
            print(f"making {folder} ...", flush=True)
            subprocess.run([sys.executable, str(generator), "--patients", str(args.patients), "--days",
                            str(args.days), "--split", str(folder)], check=True)

        def split():
            intake = read_paths([str(folder)], engine.contract)
            graded = assess_intake(intake, engine, reasons=False)
            stats = cohort_statistics(report.summary_rows(graded))
            doc = report.build_document(graded, include_days=False, cohort=stats)
            (workdir / "cohort_split.json").write_text(json.dumps(doc))

        timed("same cohort as one file per patient (folder)", split, results)
        split_seconds = results[-1][1]

    print()
    print(f"patient-days graded: {days:,}")
    print(f"grade CRS + ICANS:   {grade_seconds / baseline:.2f} x pandas.read_csv   (target <= 2)")
    print(f"full assessment:     {full_seconds / baseline:.2f} x pandas.read_csv   (target <= 3)")
    if split_seconds is not None:
        print(f"split into files:    {split_seconds / full_seconds:.2f} x the single file   (target <= 5)")
    print(f"peak memory (RSS):   {peak_mb:,.0f} MB   (target < 2048)")


if __name__ == "__main__":
    main()
