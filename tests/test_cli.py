"""The carscore command line, run as a user runs it: a separate process.

Covers the golden JSON of every sample case, the JSON document against the
data contract (section 2), the CLI being a thin layer over the library, the
output formats and options, and the exit codes of the contract (section 3):
0 all assessed, 1 bad input (named by file, row, column and value), 2 usage.

Golden files live in tests/golden/<sample stem>.json. To rewrite them after
an intended change of results:

    CARSCORE_UPDATE_GOLDEN=1 python -m pytest tests/test_cli.py -k golden

then read the diff before committing it.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import write_rows

import carscore
from carscore import __version__

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "sample_cases"
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
SAMPLES = sorted(SAMPLES_DIR.glob("*.csv"))
UPDATE_GOLDEN = os.environ.get("CARSCORE_UPDATE_GOLDEN") == "1"
PACKAGE_PARENT = Path(carscore.__file__).resolve().parent.parent

ANSI = re.compile(r"\x1b\[")
EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2

# contract section 2
TOP_KEYS = ["carscore", "rulesets", "patients"]
DAY_KEYS = ["day", "crs_grade", "icans_grade", "cns_status", "cns_substatus", "bm_response", "mrd_negative", "flags", "reasons"]
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
]
CNS_STATUS = {"CNS-1", "CNS-2", "CNS-3"}
CNS_SUBSTATUS = {"CNS-1", "CNS-2a", "CNS-2b", "CNS-2c", "CNS-3a", "CNS-3b", "CNS-3c"}
BM_RESPONSE = {"CR", "CRi", "NR", "relapse"}
BUILTIN_RULESETS = ["astct_crs", "astct_icans", "bm_response", "car_hematotox", "cns_status", "icaht", "iec_hs", "thresholds"]


# --------------------------------------------------------------------------- helpers


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "NO_COLOR",
            "FORCE_COLOR",
            "TTY_COMPATIBLE",
            "TTY_INTERACTIVE",
            "CLICOLOR_FORCE",
            "COLUMNS",
            "CARSCORE_UPDATE_GOLDEN",
        )
    }
    # the same carscore as the one this test process imports
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONIOENCODING"] = "utf-8"
    env["COLUMNS"] = "160"
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path = ROOT, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "carscore.cli.app", *args],
        cwd=cwd,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=env or _env(),
        timeout=120,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    )


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout
    assert "internal error" not in proc.stderr, proc.stderr


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@cache
def _sample_json_text(name: str) -> tuple[int, str, str]:
    proc = run_cli("grade", f"sample_cases/{name}", "--format", "json")
    return proc.returncode, proc.stdout, proc.stderr


def sample_json(path: Path) -> dict[str, Any]:
    """`carscore grade sample_cases/X.csv --format json`, run from the repository root."""
    code, out, err = _sample_json_text(path.name)
    assert code == EXIT_OK, err
    assert "Traceback" not in err
    return json.loads(out)


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """Take out what depends on the machine or the release, not on the grading."""
    doc = copy.deepcopy(doc)
    doc["carscore"] = "<version>"
    for p in doc.get("patients", []):
        if p.get("file"):
            p["file"] = p["file"].replace("\\", "/")
    for e in [*(doc.get("errors", []) or []), *(doc.get("problems", []) or [])]:
        if e.get("file"):
            e["file"] = e["file"].replace("\\", "/")
    for rs in doc.get("rulesets", []):
        # the bytes of a rule file depend on the checkout (line endings), and the
        # digest changes with every edit of the rules even when no grade does
        if "sha256" in rs:
            assert re.fullmatch(r"[0-9a-f]{64}", rs["sha256"] or ""), rs
            rs["sha256"] = "<sha256>"
    return doc


def differences(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Structural comparison; floats within a relative 1e-9 (last-digit noise across platforms)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for k in expected.keys() - actual.keys():
            out.append(f"{where}.{k}: missing")
        for k in actual.keys() - expected.keys():
            out.append(f"{where}.{k}: unexpected (value {actual[k]!r})")
        for k in expected.keys() & actual.keys():
            out += differences(expected[k], actual[k], f"{where}.{k}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(expected)} items expected, {len(actual)} found"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out += differences(e, a, f"{where}[{i}]")
        return out
    if isinstance(expected, bool) or isinstance(actual, bool):
        return [] if expected is actual else [f"{where}: expected {expected!r}, got {actual!r}"]
    if isinstance(expected, float) or isinstance(actual, float):
        if (
            isinstance(expected, (int, float))
            and isinstance(actual, (int, float))
            and math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12)
        ):
            return []
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def by_day(patient: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {d["day"]: d for d in patient["days"]}


def course(doc: dict[str, Any], patient_id: str, infusion: int = 1) -> dict[str, Any]:
    found = [p for p in doc["patients"] if p["patient_id"] == patient_id and p["infusion"] == infusion]
    assert len(found) == 1, [(p["patient_id"], p["infusion"]) for p in doc["patients"]]
    return found[0]


# --------------------------------------------------------------------------- golden JSON


def test_there_are_sample_cases() -> None:
    assert SAMPLES, f"no CSV files in {SAMPLES_DIR}"


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_golden_json(sample: Path) -> None:
    doc = normalise(sample_json(sample))
    assert all(p["file"] == rel(sample) for p in doc["patients"])
    golden = GOLDEN_DIR / f"{sample.stem}.json"
    if UPDATE_GOLDEN:
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    assert golden.is_file(), f"{golden} is missing: run with CARSCORE_UPDATE_GOLDEN=1 to create it"
    expected = json.loads(golden.read_text(encoding="utf-8"))
    diffs = differences(expected, doc)
    assert not diffs, f"{len(diffs)} difference(s) from {golden.name}:\n" + "\n".join(diffs[:40])


def test_every_golden_file_has_its_sample() -> None:
    stems = {p.stem for p in SAMPLES}
    orphans = [g.name for g in GOLDEN_DIR.glob("*.json") if g.stem not in stems]
    assert not orphans, f"golden files without a sample case: {orphans}"


# The sample cases' expected results (sample_cases/README.md), checked one by one,
# so that regenerating the golden files cannot quietly accept a wrong grade.


def test_tp53_sample_first_infusion() -> None:
    doc = sample_json(SAMPLES_DIR / "tp53_ball_two_infusions.csv")
    c = course(doc, "TP53-BALL-01", 1)
    days, s = by_day(c), c["summary"]
    assert [d for d, v in days.items() if v["crs_grade"]] == [14, 15, 16, 17]
    assert {days[d]["crs_grade"] for d in (14, 15, 16, 17)} == {1}
    assert [d for d, v in days.items() if v["icans_grade"]] == [16]
    assert days[16]["icans_grade"] == 1
    assert (s["crs_max_grade"], s["crs_onset_day"], s["crs_last_day"], s["crs_days"]) == (1, 14, 17, 4)
    assert (s["icans_max_grade"], s["icans_onset_day"], s["icans_last_day"], s["icans_days"]) == (1, 16, 16, 1)
    assert (s["tocilizumab_first_day"], s["corticosteroids_first_day"]) == (15, 16)
    assert (days[-7]["cns_status"], days[-7]["cns_substatus"]) == ("CNS-3", "CNS-3a")
    assert s["cns_status_baseline"] == "CNS-3"
    assert s["cns_remission_day"] == 20
    assert [days[d]["cns_status"] for d in (20, 25, 30, 40)] == ["CNS-1"] * 4
    assert s["cns_relapse_day"] is None
    for d in (20, 25, 30):
        assert (days[d]["bm_response"], days[d]["mrd_negative"]) == ("CR", True), d
    assert (days[40]["bm_response"], days[40]["mrd_negative"]) == ("relapse", False)
    assert (s["best_bm_response"], s["mrd_negative_remission"], s["bm_relapse_day"]) == ("CR", True, 40)
    assert (s["car_cmax"], s["car_tmax_day"]) == (112000, 18)
    assert (s["car_last_detected_day"], s["car_loss_day"]) == (25, 28)
    assert s["b_cell_recovery_day"] == 38
    assert [d for d, v in days.items() if "car_below_threshold" in v["flags"]] == [4, 28, 30, 35, 40]
    assert [d for d, v in days.items() if "neutropenia_severe" in v["flags"]] == [0, 2, 4, 7]


def test_tp53_sample_second_infusion() -> None:
    doc = sample_json(SAMPLES_DIR / "tp53_ball_two_infusions.csv")
    c = course(doc, "TP53-BALL-01", 2)
    days, s = by_day(c), c["summary"]
    assert min(days) == -6 and max(days) == 30
    assert [d for d, v in days.items() if v["crs_grade"]] == [6, 7, 8]
    assert days[9]["crs_grade"] == 0
    assert (s["crs_max_grade"], s["crs_onset_day"], s["crs_last_day"]) == (1, 6, 8)
    assert s["icans_max_grade"] == 0 and s["icans_onset_day"] is None
    assert (s["tocilizumab_first_day"], s["corticosteroids_first_day"]) == (7, None)
    assert (s["cns_status_baseline"], s["cns_remission_day"]) == ("CNS-1", None)
    assert (days[14]["bm_response"], days[14]["mrd_negative"]) == ("CRi", True)
    assert (days[20]["bm_response"], days[20]["mrd_negative"]) == ("CR", True)
    assert (s["best_bm_response"], s["bm_relapse_day"]) == ("CR", None)
    assert (s["car_cmax"], s["car_tmax_day"], s["car_last_detected_day"], s["car_loss_day"]) == (265000, 11, 30, None)
    assert s["b_cell_recovery_day"] is None


def test_synthetic_sample_grades() -> None:
    doc = sample_json(SAMPLES_DIR / "synthetic_grades.csv")
    expected_crs = {
        "SYN-CRS2": [0, 1, 2, 2, 0, 0, 0, 0],
        "SYN-CRS3": [0, 1, 2, 3, 0, 0, 0],
        "SYN-CRS4": [0, 1, 3, 4, 4, 2, 0, 0],
        "SYN-ICANS": [0, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    }
    assert [p["patient_id"] for p in doc["patients"]] == list(expected_crs)
    for pid, grades in expected_crs.items():
        c = course(doc, pid)
        assert [d["day"] for d in c["days"]] == list(range(len(grades)))
        assert [d["crs_grade"] for d in c["days"]] == grades, pid
        assert c["summary"]["crs_max_grade"] == max(grades)
        if pid != "SYN-ICANS":
            assert {d["icans_grade"] for d in c["days"]} == {None}, pid
            assert c["summary"]["icans_max_grade"] is None
    icans = course(doc, "SYN-ICANS")
    assert [d["icans_grade"] for d in icans["days"]] == [0, 0, 0, 2, 3, 4, 3, 2, 1, 0]
    assert icans["summary"]["icans_max_grade"] == 4


# --------------------------------------------------------------------------- contract section 2


def _grade_ok(v: Any) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 5)


def _day_ok(v: Any) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool))


def _first_seen_courses(path: Path) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    order: list[tuple[str, int]] = []
    for r in rows:
        key = (r.get("patient_id") or path.stem, int(r.get("infusion") or 1))
        if key not in order:
            order.append(key)
    return order


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_json_follows_the_contract(sample: Path) -> None:
    doc = sample_json(sample)
    for k in TOP_KEYS:
        assert k in doc, k
    assert doc["carscore"] == __version__
    assert isinstance(doc["rulesets"], list) and doc["rulesets"]
    for rs in doc["rulesets"]:
        assert {"id", "version", "citation"} <= rs.keys()
        assert all(isinstance(rs[k], str) and rs[k] for k in ("id", "version", "citation")), rs
    assert [r["id"] for r in doc["rulesets"]] == BUILTIN_RULESETS
    assert [(p["patient_id"], p["infusion"]) for p in doc["patients"]] == _first_seen_courses(sample)
    for p in doc["patients"]:
        where = f"{p['patient_id']} infusion {p['infusion']}"
        assert isinstance(p["patient_id"], str) and p["patient_id"]
        assert isinstance(p["infusion"], int) and p["infusion"] >= 1
        day_numbers = [d["day"] for d in p["days"]]
        assert day_numbers == sorted(set(day_numbers)), f"{where}: days not ascending and unique"
        for d in p["days"]:
            at = f"{where} day {d.get('day')}"
            missing = [k for k in DAY_KEYS if k not in d]
            assert not missing, f"{at}: missing {missing}"
            assert isinstance(d["day"], int) and not isinstance(d["day"], bool), at
            assert _grade_ok(d["crs_grade"]), (at, d["crs_grade"])
            assert _grade_ok(d["icans_grade"]), (at, d["icans_grade"])
            assert d["cns_status"] is None or d["cns_status"] in CNS_STATUS, (at, d["cns_status"])
            assert d["cns_substatus"] is None or d["cns_substatus"] in CNS_SUBSTATUS, (at, d["cns_substatus"])
            if d["cns_substatus"] is not None:
                assert d["cns_substatus"].startswith(d["cns_status"]), at
            assert d["bm_response"] is None or d["bm_response"] in BM_RESPONSE, (at, d["bm_response"])
            assert d["mrd_negative"] is None or isinstance(d["mrd_negative"], bool), at
            assert isinstance(d["flags"], list) and all(isinstance(f, str) for f in d["flags"]), at
            assert isinstance(d["reasons"], dict) and {"crs", "icans"} <= d["reasons"].keys(), at
            assert all(v is None or isinstance(v, str) for v in d["reasons"].values()), at
            if d["crs_grade"] is not None:
                assert d["reasons"]["crs"], f"{at}: a CRS grade without its reason"
            if d["icans_grade"] is not None:
                assert d["reasons"]["icans"], f"{at}: an ICANS grade without its reason"
        s = p["summary"]
        missing = [k for k in SUMMARY_KEYS if k not in s]
        assert not missing, f"{where}: summary is missing {missing}"
        assert _grade_ok(s["crs_max_grade"]) and _grade_ok(s["icans_max_grade"]), where
        for k in SUMMARY_KEYS:
            if k.endswith("_day"):
                assert _day_ok(s[k]), (where, k, s[k])
        for k in ("crs_days", "icans_days"):
            assert s[k] is None or (isinstance(s[k], int) and s[k] >= 0), (where, k, s[k])
        assert s["cns_status_baseline"] is None or s["cns_status_baseline"] in CNS_STATUS, where
        assert s["best_bm_response"] in {None, "CR", "CRi", "NR"}, (where, s["best_bm_response"])
        assert s["mrd_negative_remission"] is None or isinstance(s["mrd_negative_remission"], bool), where
        for k in ("car_cmax", "car_auc_0_28"):
            assert s[k] is None or (isinstance(s[k], (int, float)) and not isinstance(s[k], bool) and s[k] >= 0), k
        # the summary agrees with the days it summarises (course days from day 0)
        for tox in ("crs", "icans"):
            graded = [(d["day"], d[f"{tox}_grade"]) for d in p["days"] if d["day"] >= 0 and d[f"{tox}_grade"] is not None]
            if graded:
                assert s[f"{tox}_max_grade"] == max(g for _, g in graded), (where, tox)
            ill = [day for day, g in graded if g >= 1]
            if ill:
                assert (s[f"{tox}_onset_day"], s[f"{tox}_last_day"], s[f"{tox}_days"]) == (ill[0], ill[-1], len(ill))


# --------------------------------------------------------------------------- the CLI is thin


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_cli_json_is_the_library_document(sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from carscore.assess import assess_paths, load_engine
    from carscore.report import build_document

    monkeypatch.chdir(ROOT)
    assessment = assess_paths([rel(sample)], load_engine())
    library = json.loads(json.dumps(build_document(assessment), ensure_ascii=False, default=str))
    assert differences(library, sample_json(sample)) == []


# --------------------------------------------------------------------------- formats and options


def _csv_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_csv_format_has_one_row_per_day(sample: Path) -> None:
    proc = run_cli("grade", rel(sample), "--format", "csv")
    assert proc.returncode == EXIT_OK, proc.stderr
    no_traceback(proc)
    reader = csv.DictReader(io.StringIO(proc.stdout))
    rows = list(reader)
    columns = reader.fieldnames or []
    for k in ["patient_id", "infusion", *DAY_KEYS[:-1]]:
        assert k in columns, f"no column {k} in {columns}"
    doc = sample_json(sample)
    expected = [(p, d) for p in doc["patients"] for d in p["days"]]
    assert len(rows) == len(expected)
    for row, (p, d) in zip(rows, expected, strict=True):
        assert (row["patient_id"], int(row["infusion"]), int(row["day"])) == (p["patient_id"], p["infusion"], d["day"])
        for k in DAY_KEYS[1:-2]:
            assert row[k] == _csv_text(d[k]), (p["patient_id"], d["day"], k)
        assert row["flags"] == ";".join(d["flags"])


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_output_option_writes_the_file(fmt: str, tmp_path: Path) -> None:
    sample = SAMPLES_DIR / "synthetic_grades.csv"
    out = tmp_path / f"result.{fmt}"
    proc = run_cli("grade", rel(sample), "--format", fmt, "--output", str(out))
    assert proc.returncode == EXIT_OK, proc.stderr
    no_traceback(proc)
    assert proc.stdout == ""
    assert out.is_file()
    text = out.read_text(encoding="utf-8")
    if fmt == "json":
        assert json.loads(text) == sample_json(sample)
    else:
        direct = run_cli("grade", rel(sample), "--format", fmt)
        assert direct.returncode == EXIT_OK
        if fmt == "csv":
            assert text == direct.stdout
        else:
            assert not ANSI.search(text)
            for pid in ("SYN-CRS2", "SYN-CRS3", "SYN-CRS4", "SYN-ICANS"):
                assert pid in text


def test_dash_reads_stdin() -> None:
    sample = SAMPLES_DIR / "synthetic_grades.csv"
    proc = run_cli("grade", "-", "--format", "json", stdin=sample.read_bytes())
    assert proc.returncode == EXIT_OK, proc.stderr
    no_traceback(proc)
    from_stdin = json.loads(proc.stdout)
    from_file = sample_json(sample)
    for doc in (from_stdin, from_file):
        for p in doc["patients"]:
            p.pop("file", None)
    assert differences(from_file, from_stdin) == []


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == EXIT_OK
    assert proc.stdout.strip() == f"carscore {__version__}"


def test_rules_list() -> None:
    proc = run_cli("rules", "list")
    assert proc.returncode == EXIT_OK, proc.stderr
    no_traceback(proc)
    for rs in BUILTIN_RULESETS:
        assert rs in proc.stdout


def test_rules_show() -> None:
    proc = run_cli("rules", "show", "astct_crs")
    assert proc.returncode == EXIT_OK, proc.stderr
    no_traceback(proc)
    assert "astct_crs" in proc.stdout
    assert "fever_temp_c" in proc.stdout and "38.0" in proc.stdout


def test_table_format_is_the_default() -> None:
    proc = run_cli("grade", rel(SAMPLES_DIR / "tp53_ball_two_infusions.csv"))
    assert proc.returncode == EXIT_OK, proc.stderr
    no_traceback(proc)
    assert "TP53-BALL-01" in proc.stdout and "infusion 2" in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["grade", "sample_cases/tp53_ball_two_infusions.csv"],
        ["rules", "list"],
        ["rules", "show", "astct_crs"],
    ],
    ids=["grade", "rules-list", "rules-show"],
)
def test_no_color_piped_output_is_plain(args: list[str]) -> None:
    proc = run_cli(*args, env=_env(NO_COLOR="1"))
    assert proc.returncode == EXIT_OK, proc.stderr
    assert not ANSI.search(proc.stdout)
    assert not ANSI.search(proc.stderr)


def _run_in_terminal(args: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    pty = pytest.importorskip("pty")
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "carscore.cli.app", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    return proc.wait(timeout=120), out


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
@pytest.mark.parametrize(
    "args",
    [
        ["grade", "sample_cases/synthetic_grades.csv"],
        ["rules", "show", "astct_crs"],
    ],
    ids=["grade", "rules-show"],
)
def test_no_color_in_a_terminal_is_plain(args: list[str]) -> None:
    """NO_COLOR is what a user sets at a terminal: there the output must carry no escape codes at all."""
    code, styled = _run_in_terminal(args, _env(TERM="xterm-256color"))
    assert code == EXIT_OK
    if not ANSI.search(styled.decode("utf-8", "replace")):
        pytest.skip("the pseudo-terminal is not taken for a terminal here")
    code, plain = _run_in_terminal(args, _env(TERM="xterm-256color", NO_COLOR="1"))
    assert code == EXIT_OK
    escapes = sorted(set(re.findall(r"\x1b\[[0-9;]*m", plain.decode("utf-8", "replace"))))
    assert not escapes, f"NO_COLOR=1 output still has ANSI escape codes: {escapes}"


# --------------------------------------------------------------------------- --rules


def _fever_csv(path: Path) -> Path:
    return write_rows(
        path,
        [
            {"patient_id": "P1", "day": 0, "temp_c": "37.0", "hypotension": "no", "vasopressors": 0, "o2_device": "none"},
            {"patient_id": "P1", "day": 1, "temp_c": "38.2", "hypotension": "no", "vasopressors": 0, "o2_device": "none"},
        ],
    )


def test_rules_folder_replaces_the_builtin_rules(tmp_path: Path) -> None:
    from carscore.ruleset import builtin_rules_dir

    rules = tmp_path / "rules"
    shutil.copytree(builtin_rules_dir(), rules)
    crs = rules / "astct_crs.yaml"
    text, n = re.subn(r"(\n  fever_temp_c:\n    value: )38\.0\b", r"\g<1>38.5", crs.read_text(encoding="utf-8"))
    assert n == 1, "fever_temp_c: value: 38.0 not found in astct_crs.yaml"
    crs.write_text(text, encoding="utf-8")
    data = _fever_csv(tmp_path / "fever.csv")

    default = run_cli("grade", str(data), "--format", "json")
    assert default.returncode == EXIT_OK, default.stderr
    day1 = by_day(json.loads(default.stdout)["patients"][0])[1]
    assert day1["crs_grade"] == 1 and "fever" in day1["flags"]

    custom = run_cli("grade", str(data), "--format", "json", "--rules", str(rules))
    assert custom.returncode == EXIT_OK, custom.stderr
    no_traceback(custom)
    doc = json.loads(custom.stdout)
    assert [r["id"] for r in doc["rulesets"]] == BUILTIN_RULESETS
    day1 = by_day(doc["patients"][0])[1]
    assert day1["crs_grade"] == 0 and "fever" not in day1["flags"]
    assert doc["patients"][0]["summary"]["crs_max_grade"] == 0

    shown = run_cli("rules", "show", "astct_crs", "--rules", str(rules))
    assert shown.returncode == EXIT_OK, shown.stderr
    assert "38.5" in shown.stdout


# --------------------------------------------------------------------------- bad input: exit 1


# A clean single-patient file; each case below spoils it in one place. Line 2
# is day 0, line 3 is day 1 (line 1 is the header).
BASE_ROWS: list[dict[str, Any]] = [
    {
        "patient_id": "P1",
        "day": "0",
        "age_years": "40",
        "temp_c": "37.0",
        "hypotension": "no",
        "vasopressors": "0",
        "o2_device": "none",
        "ice_score": "10",
        "ice_orientation": "4",
        "ice_naming": "3",
        "ice_commands": "1",
        "ice_writing": "1",
        "ice_attention": "1",
        "capd_score": "",
        "csf_wbc": "3",
        "csf_blasts": "no",
        "bm_blasts_pct": "2",
        "bm_mrd_pct": "0",
        "mrd_method": "flow",
        "b_cells_pct": "5",
        "car_copies": "100",
    },
    {
        "patient_id": "P1",
        "day": "1",
        "age_years": "",
        "temp_c": "38.2",
        "hypotension": "no",
        "vasopressors": "0",
        "o2_device": "nasal_cannula",
        "ice_score": "10",
        "ice_orientation": "",
        "ice_naming": "",
        "ice_commands": "",
        "ice_writing": "",
        "ice_attention": "",
        "capd_score": "",
        "csf_wbc": "",
        "csf_blasts": "",
        "bm_blasts_pct": "",
        "bm_mrd_pct": "",
        "mrd_method": "",
        "b_cells_pct": "4",
        "car_copies": "2000",
    },
]

# id: ({(line, column): new value}, line, column named on stderr, fragments that must also appear)
BAD_CELLS: dict[str, tuple[dict[tuple[int, str], str], int, str, list[str]]] = {
    "non-numeric number": ({(3, "temp_c"): "abc"}, 3, "temp_c", ["'abc'"]),
    "unknown enum value": ({(3, "o2_device"): "helmet"}, 3, "o2_device", ["'helmet'"]),
    "Fahrenheit temp_c": ({(3, "temp_c"): "101.3"}, 3, "temp_c", ["'101.3'", "Fahrenheit"]),
    "ICE 14": ({(3, "ice_score"): "14"}, 3, "ice_score", ["'14'"]),
    "CAPD 33": ({(3, "capd_score"): "33"}, 3, "capd_score", ["'33'"]),
    "ICE item above its maximum": ({(2, "ice_orientation"): "5"}, 2, "ice_orientation", ["'5'"]),
    "ICE items disagree with ice_score": ({(2, "ice_orientation"): "3"}, 2, "ice_score", ["ice_orientation=3", "ice_score=10"]),
    "negative vasopressors": ({(3, "vasopressors"): "-1"}, 3, "vasopressors", ["'-1'"]),
    "negative csf_wbc": ({(2, "csf_wbc"): "-2"}, 2, "csf_wbc", ["'-2'"]),
    "bm_blasts_pct above 100": ({(2, "bm_blasts_pct"): "120"}, 2, "bm_blasts_pct", ["'120'"]),
    "b_cells_pct above 100": ({(3, "b_cells_pct"): "101"}, 3, "b_cells_pct", ["'101'"]),
    "negative car_copies": ({(3, "car_copies"): "-5"}, 3, "car_copies", ["'-5'"]),
    "car_copies as text": ({(3, "car_copies"): "high"}, 3, "car_copies", ["'high'"]),
    "unknown mrd_method": ({(2, "mrd_method"): "elisa"}, 2, "mrd_method", ["'elisa'"]),
    "missing day": ({(3, "day"): ""}, 3, "day", ["blank"]),
    "non-integer day": ({(3, "day"): "2.5"}, 3, "day", ["'2.5'"]),
}


def _spoiled(path: Path, changes: dict[tuple[int, str], str]) -> Path:
    rows = copy.deepcopy(BASE_ROWS)
    for (line, column), value in changes.items():
        rows[line - 2][column] = value
    return write_rows(path, rows)


def _exit_data_without_the_course(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == EXIT_DATA, (proc.returncode, proc.stderr)
    no_traceback(proc)
    doc = json.loads(proc.stdout)  # the rest is still reported, as a valid document
    assert doc["errors"], "the problem is not in the JSON document's errors"
    return doc


def test_the_clean_base_file_grades(tmp_path: Path) -> None:
    data = _spoiled(tmp_path / "base.csv", {})
    proc = run_cli("grade", data.name, "--format", "json", cwd=tmp_path)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "error" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert [p["patient_id"] for p in doc["patients"]] == ["P1"]
    assert by_day(doc["patients"][0])[1]["crs_grade"] == 2


@pytest.mark.parametrize("case", list(BAD_CELLS))
def test_bad_cell_is_named_and_exits_1(case: str, tmp_path: Path) -> None:
    changes, line, column, fragments = BAD_CELLS[case]
    data = _spoiled(tmp_path / "bad.csv", changes)
    proc = run_cli("grade", data.name, "--format", "json", cwd=tmp_path)
    doc = _exit_data_without_the_course(proc)
    assert doc["patients"] == [], "a course with a bad cell must not be assessed"
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    named = [ln for ln in lines if "bad.csv" in ln and f"row {line}," in ln and f"column {column}" in ln]
    assert named, f"no error naming bad.csv, row {line}, column {column}:\n{proc.stderr}"
    for fragment in fragments:
        assert any(fragment in ln for ln in named), f"{fragment!r} (as written in the file) not named:\n{proc.stderr}"
    assert any(e["row"] == line and column in (e["column"] or "") for e in doc["errors"]), doc["errors"]


BAD_FILES: dict[str, tuple[bytes, list[str]]] = {
    "no day column": (b"patient_id,temp_c\nP1,37.0\n", ["row 1", "'day'"]),
    "empty file": (b"", ["empty"]),
    "header only": (b"patient_id,day,temp_c\n", ["no rows"]),
    "binary file": (bytes(range(256)) * 8, ["binary"]),
    # which of the two is the day's temperature? neither may be dropped silently
    "column given twice": (b"patient_id,day,temp_c,temp_c\nP1,0,37.0,39.5\n", ["row 1", "temp_c", "twice"]),
    "column given twice in another case": (b"patient_id,day,Temp_C,temp_c\nP1,0,37.0,39.5\n", ["row 1", "temp_c", "twice"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_named_and_exits_1(case: str, tmp_path: Path) -> None:
    content, fragments = BAD_FILES[case]
    data = tmp_path / "bad.csv"
    data.write_bytes(content)
    proc = run_cli("grade", data.name, "--format", "json", cwd=tmp_path)
    doc = _exit_data_without_the_course(proc)
    assert doc["patients"] == []
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:") and "bad.csv" in ln]
    assert errors, proc.stderr
    for fragment in fragments:
        assert any(fragment in ln for ln in errors), f"{fragment!r} not on stderr:\n{proc.stderr}"


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_bad_patient_is_left_out_and_the_others_are_graded(fmt: str, tmp_path: Path) -> None:
    good = [
        {"patient_id": "A", "day": 0, "temp_c": "37.0"},
        {"patient_id": "A", "day": 1, "temp_c": "38.6"},
        {"patient_id": "C", "day": 0, "temp_c": "39.1"},
        {"patient_id": "C", "day": 1, "temp_c": "37.2"},
    ]
    bad = [{"patient_id": "B", "day": 0, "temp_c": "37.1"}, {"patient_id": "B", "day": 1, "temp_c": "101.3"}]
    rows = good[:2] + bad + good[2:]
    data = write_rows(tmp_path / "cohort.csv", rows)  # B's day 1 is line 5
    proc = run_cli("grade", data.name, "--format", fmt, cwd=tmp_path)
    assert proc.returncode == EXIT_DATA, proc.stderr
    no_traceback(proc)
    assert any("cohort.csv, row 5, column temp_c" in ln and "'101.3'" in ln for ln in proc.stderr.splitlines()), proc.stderr
    if fmt == "json":
        doc = json.loads(proc.stdout)
        assert [p["patient_id"] for p in doc["patients"]] == ["A", "C"]
        assert [d["crs_grade"] for d in course(doc, "A")["days"]] == [0, 1]
        assert [d["crs_grade"] for d in course(doc, "C")["days"]] == [1, 0]
        alone = run_cli("grade", write_rows(tmp_path / "a.csv", good[:2]).name, "--format", "json", cwd=tmp_path)
        assert alone.returncode == EXIT_OK
        assert course(json.loads(alone.stdout), "A")["days"] == course(doc, "A")["days"]
    elif fmt == "csv":
        got = {r["patient_id"] for r in csv.DictReader(io.StringIO(proc.stdout))}
        assert got == {"A", "C"}
    else:
        assert "A · infusion 1" in proc.stdout and "C · infusion 1" in proc.stdout
        assert "B · infusion 1" not in proc.stdout


# --------------------------------------------------------------------------- usage errors: exit 2


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli("grade", "no_such_file.csv", "--format", "json", cwd=tmp_path)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    no_traceback(proc)
    assert "no_such_file.csv" in proc.stderr
    assert proc.stdout == ""


def test_unknown_format_is_a_usage_error() -> None:
    proc = run_cli("grade", rel(SAMPLES_DIR / "synthetic_grades.csv"), "--format", "xml")
    assert proc.returncode == EXIT_USAGE, proc.stderr
    no_traceback(proc)
    assert "xml" in proc.stderr
    assert proc.stdout == ""


def test_unknown_ruleset_to_show_is_a_usage_error() -> None:
    proc = run_cli("rules", "show", "no_such_rules")
    assert proc.returncode == EXIT_USAGE, proc.stderr
    no_traceback(proc)
    assert "no_such_rules" in proc.stderr


def _break_yaml(text: str) -> str:
    return text.replace("\nparameters:\n", "\nparameters:\n  broken: [\n", 1)


def _break_expression(text: str) -> str:
    return text.replace('fever: "temperature >= fever_temp_c"', 'fever: "temperature >== fever_temp_c"', 1)


def _unknown_name(text: str) -> str:
    return text.replace('fever: "temperature >= fever_temp_c"', 'fever: "temperature >= fever_temp_f"', 1)


def _text_parameter(text: str) -> str:
    return re.sub(r"(\n  fever_temp_c:\n    value: )38\.0\b", r"\g<1>hot", text, count=1)


BROKEN_RULES = {
    "invalid YAML": _break_yaml,
    "syntax error in a condition": _break_expression,
    "unknown name": _unknown_name,
    "text where a number is needed": _text_parameter,
}


@pytest.mark.parametrize("case", list(BROKEN_RULES))
def test_broken_rule_folder_is_a_usage_error(case: str, tmp_path: Path) -> None:
    from carscore.ruleset import builtin_rules_dir

    rules = tmp_path / "rules"
    shutil.copytree(builtin_rules_dir(), rules)
    crs = rules / "astct_crs.yaml"
    original = crs.read_text(encoding="utf-8")
    broken = BROKEN_RULES[case](original)
    assert broken != original
    crs.write_text(broken, encoding="utf-8")
    proc = run_cli("grade", rel(SAMPLES_DIR / "synthetic_grades.csv"), "--format", "json", "--rules", str(rules))
    assert proc.returncode == EXIT_USAGE, proc.stderr
    no_traceback(proc)
    assert re.search(r"astct_crs\.yaml:\d+", proc.stderr), f"no file:line on stderr:\n{proc.stderr}"
    assert proc.stdout == ""


@pytest.mark.parametrize("case", ["empty folder", "missing folder"])
def test_rule_folder_without_rules_is_a_usage_error(case: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    if case == "empty folder":
        rules.mkdir()
    proc = run_cli("grade", rel(SAMPLES_DIR / "synthetic_grades.csv"), "--format", "json", "--rules", str(rules))
    assert proc.returncode == EXIT_USAGE, proc.stderr
    no_traceback(proc)
    assert "rules" in proc.stderr
    assert proc.stdout == ""


def test_the_table_leaves_the_reasons_of_quiet_days_out() -> None:
    proc = run_cli("grade", rel(SAMPLES_DIR / "tp53_ball_two_infusions.csv"), env={**_env(), "COLUMNS": "140"})
    assert proc.returncode == 0, proc.stderr
    # grade-0 days with nothing found, and days before the infusion, say nothing more
    assert "no fever, no hypotension, no hypoxia" not in proc.stdout
    assert "before the infusion: not CRS" not in proc.stdout
    assert "fever without hypotension or hypoxia" in proc.stdout
