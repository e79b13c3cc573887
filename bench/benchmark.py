#!/usr/bin/env python3
"""carscore benchmark: time grading and full cohort assessment against the
time pandas.read_csv needs only to read the same file, in the same run.

    python bench/benchmark.py                       # 20,000 patients x 50 days (~1M patient-days)
    python bench/benchmark.py --patients 2000       # a quicker run
    python bench/benchmark.py --split               # also the cohort split into one file per patient
    python bench/benchmark.py --long 10000000       # also import a CLIF export of 10 million vital-sign rows

The cohort is made by make_cohort.py from the shared benchmark folder (looked
for beside the checkout, or given with --generator). Figures go to stdout as
a small table; nothing is asserted: targets are read, not tested.
"""

from __future__ import annotations

import argparse
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
    candidates = (
        [Path(given)] if given else [ROOT.parent / "shared" / "bench" / "make_cohort.py", ROOT / "bench" / "make_cohort.py"]
    )
    for c in candidates:
        if c.is_file():
            return c
    sys.exit("make_cohort.py not found: pass --generator PATH")


STAGES = {}


def stage(name):
    def register(fn):
        STAGES[name] = fn
        return fn

    return register


@stage("pandas")
def _pandas(path: str) -> int:
    import pandas as pd

    return len(pd.read_csv(path))


@stage("grade")
def _grade(path: str) -> int:
    from carscore.assess import assess_intake, load_engine
    from carscore.intake import read_paths

    rules = [ROOT / "rules" / "astct_crs.yaml", ROOT / "rules" / "astct_icans.yaml"]
    engine = load_engine(rules, builtins=False) if all(r.is_file() for r in rules) else load_engine()
    return assess_intake(read_paths([path], engine.contract), engine).days.height


@stage("import")
def _import(path: str) -> int:
    from carscore.importer import import_sources

    folder = Path(path)
    imported = import_sources([str(folder)], "clif", str(folder / "infusions.csv"), "America/Chicago")
    imported.rows.write_parquet(folder.with_suffix(".rows.parquet"))
    return imported.rows.height


@stage("pandas_long")
def _pandas_long(path: str) -> int:
    import pandas as pd

    return sum(len(pd.read_csv(f)) for f in sorted(Path(path).glob("clif_*.csv")))


@stage("cohort")
def _cohort(path: str, systems: list[str] | None = None) -> int:
    from carscore import report
    from carscore.assess import assess_intake, load_engine
    from carscore.cohort import cohort_of
    from carscore.intake import read_paths

    engine = load_engine(systems=systems)
    graded = assess_intake(read_paths([path], engine.contract), engine, reasons=False)
    stats = cohort_of(graded)
    doc = report.build_document(graded, include_days=False, cohort=stats)
    Path(path).with_suffix(".result.json").write_text(json.dumps(doc))
    return graded.days.height


@stage("cohort_all_systems")
def _cohort_all_systems(path: str) -> int:
    return _cohort(path, ["all"])


REPEAT = 1


def timed(label: str, name: str, path: Path, results: list) -> tuple[float, float]:
    """Run one stage in a fresh process: wall time and that process's peak memory
    (the fastest of --repeat runs: the least disturbed by other work on the machine)."""
    runs = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--stage", name, str(path)], check=True, capture_output=True, text=True)
        runs.append((time.perf_counter() - start, json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]))
    seconds, peak_mb = min(runs)
    results.append((label, seconds, peak_mb))
    print(f"  {label:<62} {seconds:7.2f} s {peak_mb:8,.0f} MB", flush=True)
    return seconds, peak_mb


def run_stage(name: str, path: str) -> None:
    STAGES[name](path)
    print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--stage":
        run_stage(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=20000)
    ap.add_argument("--days", type=int, default=50)
    ap.add_argument("--generator", help="path to make_cohort.py")
    ap.add_argument("--workdir", help="where to write the cohort (default: a temporary folder)")
    ap.add_argument("--split", action="store_true", help="also assess the cohort as one file per patient")
    ap.add_argument("--long", type=int, default=0, metavar="ROWS", help="also import a CLIF export of about ROWS vital-sign rows")
    ap.add_argument("--systems", action="store_true", help="also assess the cohort in every grading system (--systems all)")
    ap.add_argument("--repeat", type=int, default=1, help="run each stage this many times and keep the fastest")
    args = ap.parse_args()
    global REPEAT
    REPEAT = max(1, args.repeat)

    generator = find_generator(args.generator)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="carscore-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cohort = workdir / f"cohort_{args.patients}x{args.days}.csv"
    if not cohort.exists():
        print(f"making {cohort} ...", flush=True)
        subprocess.run(
            [sys.executable, str(generator), "--patients", str(args.patients), "--days", str(args.days), "--out", str(cohort)],
            check=True,
        )
    size_mb = cohort.stat().st_size / 1e6

    import pandas as pd
    import polars as pl

    results: list = []
    print(
        f"cohort: {cohort.name}, {size_mb:.0f} MB; {os.cpu_count()} cores; polars {pl.__version__}, "
        f"pandas {pd.__version__}; each stage in its own process (time includes its start-up)"
    )
    baseline, _ = timed("pandas.read_csv (read only, the yardstick)", "pandas", cohort, results)
    grade_seconds, _ = timed("grade CRS + ICANS with reasons (read, parse, grade, word)", "grade", cohort, results)
    full_seconds, peak_mb = timed("full cohort: every rule set, summaries, statistics, JSON", "cohort", cohort, results)
    all_seconds = None
    if args.systems:
        label = "full cohort in every grading system (--systems all)"
        all_seconds, all_peak = timed(label, "cohort_all_systems", cohort, results)
    split_seconds = None
    if args.split:
        folder = workdir / f"split_{args.patients}x{args.days}"
        if not folder.exists():
            print(f"making {folder} ...", flush=True)
            subprocess.run(
                [
                    sys.executable,
                    str(generator),
                    "--patients",
                    str(args.patients),
                    "--days",
                    str(args.days),
                    "--split",
                    str(folder),
                ],
                check=True,
            )
        split_seconds, _ = timed("same cohort as one file per patient (folder)", "cohort", folder, results)
    long_ratio = None
    if args.long:
        folder = workdir / f"clif_long_{args.long}"
        if not folder.exists():
            print(f"making {folder} ...", flush=True)
            maker = ROOT / "bench" / "make_long.py"
            subprocess.run([sys.executable, str(maker), "--rows", str(args.long), "--out", str(folder)], check=True)
        read_long, _ = timed("pandas.read_csv of every table of the CLIF export", "pandas_long", folder, results)
        import_seconds, _ = timed("carscore import --from clif (to Parquet)", "import", folder, results)
        long_ratio = import_seconds / read_long
    print()
    print(f"grade CRS + ICANS:   {grade_seconds / baseline:.2f} x pandas.read_csv   (target <= 2)")
    print(f"full assessment:     {full_seconds / baseline:.2f} x pandas.read_csv   (target <= 3)")
    if all_seconds is not None:
        print(f"every grading system: {all_seconds / baseline:.2f} x pandas.read_csv, {all_peak:,.0f} MB peak")
    if split_seconds is not None:
        print(f"split into files:    {split_seconds / full_seconds:.2f} x the single file   (target <= 5)")
    print(f"full assessment peak memory: {peak_mb:,.0f} MB   (target < 2048)")
    if long_ratio is not None:
        print(f"import of the CLIF export: {long_ratio:.2f} x pandas.read_csv of its tables")


if __name__ == "__main__":
    main()
