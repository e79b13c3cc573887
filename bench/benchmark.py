#!/usr/bin/env python3
"""carscore benchmark: time the cohort commands against the time
pandas.read_csv needs only to read the same file, in the same run, with each
command's peak memory.

    python bench/benchmark.py                       # 1M and 4M patient-days (50 days a course)
    python bench/benchmark.py --size 10m            # 10M patient-days
    python bench/benchmark.py --size 100k           # a quicker run
    python bench/benchmark.py --split               # also the first cohort as one file per patient
    python bench/benchmark.py --library --systems   # also the library's stages and every grading system
    python bench/benchmark.py --long 10000000       # also import a CLIF export of 10 million vital-sign rows

The cohort is made by make_cohort.py from the shared benchmark folder (looked
for beside the checkout, or given with --generator). Figures go to stdout as
a small table; nothing is asserted: targets are read, not tested.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    """The library's unchunked path: every rule set, summaries, statistics, JSON."""
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


# The commands as a user runs them: the installed console script (else the same
# entry point through -m), each in a process of its own.
_SCRIPT = Path(sys.executable).with_name("carscore")
CARSCORE = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "carscore.cli.app"]


def _to(path: str, suffix: str) -> str:
    return str(Path(path).with_suffix(suffix))


COMMANDS = {
    "cli_cohort_json": lambda path: ["cohort", path, "--format", "json", "-o", _to(path, ".cohort.json")],
    "cli_cohort_days_json": lambda path: ["cohort", path, "--days", "--format", "json", "-o", _to(path, ".days.json")],
    "cli_cohort_days_csv": lambda path: ["cohort", path, "--days", "--format", "csv", "-o", _to(path, ".days.csv")],
    "cli_cohort_folder": lambda path: ["cohort", path, "--format", "json", "-o", _to(path, ".cohort.json")],
}


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and peak memory (MB) of one process, from the kernel's own account of it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in (0, 1):  # 1: some input not assessed, still a result
            err.seek(0)
            sys.exit(f"{' '.join(command)} failed ({process.returncode}): {err.read().decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


REPEAT = 1


def timed(label: str, name: str, path: Path, results: list, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run one stage in a fresh process: wall time and that process's peak memory
    (the fastest of --repeat runs: the least disturbed by other work on the machine)."""
    if name in COMMANDS:
        command = CARSCORE + COMMANDS[name](str(path))
    else:
        command = [sys.executable, __file__, "--stage", name, str(path)]
    seconds, peak_mb = min(measured(command, {**os.environ, **(env or {})}) for _ in range(REPEAT))
    results.append((label, seconds, peak_mb))
    print(f"  {label:<62} {seconds:7.2f} s {peak_mb:8,.0f} MB", flush=True)
    return seconds, peak_mb


def run_stage(name: str, path: str) -> None:
    STAGES[name](path)


def parse_size(text: str) -> int:
    """'250k', '1m', '10m' or a number: patient-days."""
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * factor)


def make(generator: Path, args: list[str]) -> None:
    subprocess.run([sys.executable, str(generator), *args], check=True)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--stage":
        run_stage(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1m,4m", help="cohort sizes in patient-days, comma-separated (e.g. 1m,4m or 10m)")
    ap.add_argument("--days", type=int, default=50, help="days per course")
    ap.add_argument("--generator", help="path to make_cohort.py")
    ap.add_argument("--workdir", help="where to write the cohorts (default: a temporary folder)")
    ap.add_argument("--split", action="store_true", help="also the first cohort as one file per patient (a folder)")
    ap.add_argument("--library", action="store_true", help="also the library stages: grading with reasons, unchunked cohort")
    ap.add_argument("--long", type=int, default=0, metavar="ROWS", help="also import a CLIF export of about ROWS vital-sign rows")
    ap.add_argument("--systems", action="store_true", help="also assess the first cohort in every grading system (--systems all)")
    ap.add_argument("--repeat", type=int, default=1, help="run each stage this many times and keep the fastest")
    args = ap.parse_args()
    global REPEAT
    REPEAT = max(1, args.repeat)

    generator = find_generator(args.generator)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="carscore-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)

    import pandas as pd
    import polars as pl

    versions = f"polars {pl.__version__}, pandas {pd.__version__}"
    print(f"{os.cpu_count()} cores; {versions}; each stage in its own process (time includes start-up)")
    lines: list[str] = []
    results: list = []
    # The located YAML of the rule files is kept between runs (carscore.yamlcache),
    # here in a folder of the benchmark's own. Start-up is shown both ways, on
    # one course: rule files read afresh, as on a first run, and read back.
    cache = workdir / "rule-cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["CARSCORE_CACHE_DIR"] = str(cache)
    one_course = workdir / "one_course.csv"
    make(generator, ["--patients", "1", "--days", str(args.days), "--out", str(one_course)])
    print("\nstart-up: cohort --format json of one course")
    afresh = {"CARSCORE_CACHE_DIR": "off"}
    first, _ = timed("rule files read afresh (as on a first run)", "cli_cohort_json", one_course, results, afresh)
    measured(CARSCORE + COMMANDS["cli_cohort_json"](str(one_course)), dict(os.environ))
    kept, _ = timed("rule files read back (every later run)", "cli_cohort_json", one_course, results)
    lines.append(f"start-up: {first:.2f} s reading the rule files, {kept:.2f} s reading them back")
    for k, size in enumerate(parse_size(s) for s in args.size.split(",")):
        patients = max(1, size // args.days)
        cohort = workdir / f"cohort_{patients}x{args.days}.csv"
        if not cohort.exists():
            print(f"making {cohort} ...", flush=True)
            make(generator, ["--patients", str(patients), "--days", str(args.days), "--out", str(cohort)])
        label = f"{patients * args.days / 1e6:g}M patient-days"
        print(f"\n{label}: {cohort.name}, {cohort.stat().st_size / 1e6:,.0f} MB")
        baseline, _ = timed("pandas.read_csv (read only, the yardstick)", "pandas", cohort, results)
        seconds, peak = timed("carscore cohort FILE --format json", "cli_cohort_json", cohort, results)
        ratio = seconds / baseline
        lines.append(f"{label}: cohort --format json {ratio:.2f} x pandas, {peak:,.0f} MB peak (target <= 1.5 x, < 1 GB)")
        if k == 0:
            days_json, peak_dj = timed("carscore cohort FILE --days --format json", "cli_cohort_days_json", cohort, results)
            days_csv, peak_dc = timed("carscore cohort FILE --days --format csv", "cli_cohort_days_csv", cohort, results)
            ratio = days_json / baseline
            lines.append(f"{label}: cohort --days --format json {ratio:.2f} x pandas, {peak_dj:,.0f} MB (target <= 3 x)")
            lines.append(f"{label}: cohort --days --format csv {days_csv / baseline:.2f} x pandas, {peak_dc:,.0f} MB")
            if args.library:
                grade_seconds, _ = timed("library: grade CRS + ICANS with reasons", "grade", cohort, results)
                full_seconds, full_peak = timed("library: every rule set, unchunked, summaries, JSON", "cohort", cohort, results)
                grade_ratio, full_ratio = grade_seconds / baseline, full_seconds / baseline
                lines.append(f"{label}: library grade {grade_ratio:.2f} x, unchunked cohort {full_ratio:.2f} x")
            if args.systems:
                every = "library: every grading system (--systems all)"
                all_seconds, all_peak = timed(every, "cohort_all_systems", cohort, results)
                lines.append(f"{label}: every grading system {all_seconds / baseline:.2f} x pandas, {all_peak:,.0f} MB")
            if args.split:
                folder = workdir / f"split_{patients}x{args.days}"
                if not folder.exists():
                    print(f"making {folder} ...", flush=True)
                    make(generator, ["--patients", str(patients), "--days", str(args.days), "--split", str(folder)])
                name = f"cohort of a folder of {patients:,} files"
                split_seconds, split_peak = timed(name, "cli_cohort_folder", folder, results)
                ratio = split_seconds / seconds
                lines.append(f"{label}: folder of {patients:,} files {ratio:.2f} x the single file, {split_peak:,.0f} MB")
    if args.long:
        folder = workdir / f"clif_long_{args.long}"
        if not folder.exists():
            print(f"making {folder} ...", flush=True)
            maker = [sys.executable, str(ROOT / "bench" / "make_long.py"), "--rows", str(args.long), "--out", str(folder)]
            subprocess.run(maker, check=True)
        read_long, _ = timed("pandas.read_csv of every table of the CLIF export", "pandas_long", folder, results)
        import_seconds, _ = timed("carscore import --from clif (to Parquet)", "import", folder, results)
        lines.append(f"import of the CLIF export: {import_seconds / read_long:.2f} x pandas.read_csv of its tables")
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
