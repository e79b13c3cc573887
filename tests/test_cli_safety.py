"""Nothing silently lost or misread at the edges of the command line.

- what carscore prints is shown literally: no Rich markup or emoji codes are
  interpreted in patient ids, file names or values, and control characters
  and terminal escape sequences are shown escaped (ESC as \\x1b);
- CSV cells that a spreadsheet would run as a formula are guarded (OWASP);
- ``-o FILE`` is written through a temporary file and a rename: a failure
  never leaves a truncated file in place of a previous good one, and the
  input files are never overwritten;
- closed or broken standard streams, a full disk and Ctrl-C each give one
  sentence and an exit code (2, or 130 for an interrupt), never a traceback;
- every problem and note is also in the JSON document (``problems``).

Most cases run in-process (typer's CliRunner); the closed-descriptor, broken
pipe and signal cases need a real process.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import write_rows
from typer.testing import CliRunner

import carscore
from carscore.cli.app import app
from carscore.cli.console import printable

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_PARENT = Path(carscore.__file__).resolve().parent.parent
EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
ESC = "\x1b"


# --------------------------------------------------------------------------- helpers


def cli(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, list(args), input=stdin, env={"COLUMNS": "160", "NO_COLOR": "1", **(env or {})})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr, result.stderr
    assert result.exit_code != 3, result.stderr
    return result


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONIOENCODING"] = "utf-8"
    env["NO_COLOR"] = "1"
    return env


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run carscore through /bin/sh, for redirections such as >&- and <&-."""
    carscore_cmd = f'"{sys.executable}" -m carscore.cli.app'
    proc = subprocess.run(
        ["/bin/sh", "-c", command.replace("carscore", carscore_cmd, 1)],
        cwd=cwd, env=_env(), capture_output=True, timeout=60,
    )  # fmt: skip
    out = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr
    return out


def patients_file(path: Path, ids: list[str]) -> Path:
    rows = []
    for pid in ids:
        rows += [{"patient_id": pid, "day": 0, "temp_c": "37.0"}, {"patient_id": pid, "day": 1, "temp_c": "38.4"}]
    return write_rows(path, rows)


def no_leftovers(folder: Path, *keep: str) -> None:
    extra = sorted(p.name for p in folder.iterdir() if p.name not in keep)
    assert not extra, f"left behind: {extra}"


SAMPLE = ROOT / "sample_cases" / "synthetic_grades.csv"
SPECIAL_IDS = ["[/]", "[red]X[/red]", ":red_circle:", f"{ESC}[31mEVIL{ESC}[0m", "A\u202eB"]


# --------------------------------------------------------------------------- printed literally


def test_printable_escapes_control_characters_and_keeps_the_rest() -> None:
    assert printable(f"{ESC}[2J") == "\\x1b[2J"
    assert printable("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert printable("a\nb", keep_newlines=True) == "a\nb"
    assert printable("\x9b31m") == "\\x9b31m"  # the 8-bit CSI
    assert printable("id\u202eevil") == "id\\u202eevil"  # right-to-left override
    assert printable("[red]X[/red] ≥ 38 °C µg") == "[red]X[/red] ≥ 38 °C µg"


def test_grade_table_shows_ids_as_written(tmp_path: Path) -> None:
    data = patients_file(tmp_path / "ids.csv", SPECIAL_IDS)
    result = cli("grade", str(data))
    assert result.exit_code == EXIT_OK, result.stderr
    out = result.stdout
    assert ESC not in out and "\u202e" not in out
    for shown in ("[/] · infusion 1", "[red]X[/red] · infusion 1", ":red_circle: · infusion 1",
                  "\\x1b[31mEVIL\\x1b[0m · infusion 1", "A\\u202eB · infusion 1"):  # fmt: skip
        assert shown in out, f"{shown!r} not in the table:\n{out}"
    assert "🔴" not in out


def test_cohort_table_shows_ids_as_written(tmp_path: Path) -> None:
    data = patients_file(tmp_path / "ids.csv", SPECIAL_IDS)
    result = cli("cohort", str(data))
    assert result.exit_code == EXIT_OK, result.stderr
    assert ESC not in result.stdout
    for shown in ("[/]", "[red]X[/red]", ":red_circle:", "\\x1b[31mEVIL", "A\\u202eB"):
        assert shown in result.stdout, shown


def test_file_name_with_markup_and_escapes_is_shown_literally(tmp_path: Path) -> None:
    name = f"[bold]p{ESC}]0;title{ESC}\\.csv"
    data = patients_file(tmp_path / name, ["P1"])
    result = cli("grade", str(data))
    assert result.exit_code == EXIT_OK, result.stderr
    assert ESC not in result.stdout
    assert "[bold]p\\x1b]0;title\\x1b\\.csv" in result.stdout


def test_messages_on_stderr_escape_control_characters(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text(f"patient_id,day,temp_c,{ESC}[2Jcol\nP1,0,{ESC}[31m39\n", encoding="utf-8")
    result = cli("grade", str(data), "--format", "json")
    assert result.exit_code == EXIT_DATA
    assert ESC not in result.stderr
    assert "\\x1b[2jcol" in result.stderr.lower()  # the ignored column, named in a note
    assert "\\x1b[31m39" in result.stderr  # the unreadable value, named in an error


@pytest.mark.parametrize("width", [60, 100])
def test_long_ids_and_file_names_do_not_break_the_tables(tmp_path: Path, width: int) -> None:
    long_id = "PATIENT-" + "X" * 150 + "-END"
    folder = tmp_path / ("a-very-long-folder-name-" * 4)
    folder.mkdir()
    data = patients_file(folder / ("file-" * 20 + ".csv"), [long_id, "P2"])
    for command in ("grade", "cohort"):
        result = cli(command, str(data), env={"COLUMNS": str(width)})
        assert result.exit_code == EXIT_OK, result.stderr
        lines = result.stdout.splitlines()
        too_wide = [ln for ln in lines if len(ln) > width]
        assert not too_wide, f"{command}: lines wider than {width}:\n" + "\n".join(too_wide)
        assert "P2" in result.stdout
        # folded, not cut: every character of the id is still shown
        assert "PATIENT-" in result.stdout and result.stdout.count("X") - result.stdout.count("HEMATOTOX") == 150
    cohort = cli("cohort", str(data), env={"COLUMNS": str(width)})
    assert "CRS max" in cohort.stdout  # the other columns keep their room


# --------------------------------------------------------------------------- CSV formula injection


# (a leading tab or CR cannot reach an id: cells are read stripped; the unit test below covers them)
FORMULA_IDS = ["=1+2", "+SUM(A1:A2)", "-2+3", "@cmd", "\uff1d1+1", "-5", "+7", "P1"]


def test_csv_text_cells_that_start_a_formula_are_guarded(tmp_path: Path) -> None:
    rows = []
    for pid in FORMULA_IDS:
        rows += [{"patient_id": pid, "day": -5, "temp_c": "37.0"}, {"patient_id": pid, "day": 1, "temp_c": "38.4"}]
    data = write_rows(tmp_path / "f.csv", rows)
    expected = {"=1+2": "'=1+2", "+SUM(A1:A2)": "'+SUM(A1:A2)", "-2+3": "'-2+3", "@cmd": "'@cmd", "\uff1d1+1": "'\uff1d1+1", "-5": "-5", "+7": "+7", "P1": "P1"}  # fmt: skip
    days = cli("grade", str(data), "--format", "csv")
    assert days.exit_code == EXIT_OK, days.stderr
    day_rows = list(csv.DictReader(io.StringIO(days.stdout, newline="")))
    assert {r["patient_id"] for r in day_rows} == set(expected.values())
    assert {r["day"] for r in day_rows} == {"-5", "1"}, "a negative day is a number, not a formula"
    summary = cli("cohort", str(data), "--format", "csv")
    assert summary.exit_code == EXIT_OK, summary.stderr
    got = [r["patient_id"] for r in csv.DictReader(io.StringIO(summary.stdout, newline=""))]
    assert got == [expected[p] for p in FORMULA_IDS]


def test_spreadsheet_safe_leaves_numbers_and_plain_text_alone() -> None:
    from carscore.report import spreadsheet_safe

    ids = ["=cmd|' /C calc'!A0", "-1", "x-1", None, "@x", "\tx", "\r=1", "+", "-1e5", "1-2"]
    table = pl.DataFrame({"id": ids, "day": [-5, -1, 0, 1, 2, 3, 4, 5, 6, 7], "value": [-1.5, 2.0, None, 3.0, -0.5] * 2})
    safe = spreadsheet_safe(table)
    assert safe["id"].to_list() == ["'=cmd|' /C calc'!A0", "-1", "x-1", None, "'@x", "'\tx", "'\r=1", "'+", "-1e5", "1-2"]
    assert safe["day"].to_list() == table["day"].to_list()
    assert safe["value"].to_list() == table["value"].to_list()
    assert safe.schema == table.schema


def test_json_keeps_ids_exact_and_escapes_invisible_characters(tmp_path: Path) -> None:
    data = patients_file(tmp_path / "ids.csv", SPECIAL_IDS)
    result = cli("grade", str(data), "--format", "json")
    assert result.exit_code == EXIT_OK
    assert ESC not in result.stdout and "\u202e" not in result.stdout
    assert "\\u202e" in result.stdout
    assert [p["patient_id"] for p in json.loads(result.stdout)["patients"]] == SPECIAL_IDS


# --------------------------------------------------------------------------- -o FILE


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_output_replaces_the_previous_file_only_when_complete(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out" / "result.txt"
    out.parent.mkdir()
    out.write_text("previous good result\n")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    result = cli("grade", str(SAMPLE), "--format", fmt, "-o", str(out))
    assert result.exit_code == EXIT_USAGE
    assert "disk is full" in result.stderr and str(out) in result.stderr
    assert out.read_text() == "previous good result\n"
    no_leftovers(out.parent, "result.txt")
    monkeypatch.undo()

    done = cli("grade", str(SAMPLE), "--format", fmt, "-o", str(out))
    assert done.exit_code == EXIT_OK, done.stderr
    assert "SYN-CRS4" in out.read_text(encoding="utf-8")
    no_leftovers(out.parent, "result.txt")


def test_interrupt_while_writing_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "result.json"
    out.write_text("{}\n")

    def interrupt(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    result = cli("grade", str(SAMPLE), "--format", "json", "-o", str(out))
    assert result.exit_code == EXIT_INTERRUPTED
    assert "interrupted" in result.stderr
    assert out.read_text() == "{}\n"
    no_leftovers(tmp_path, "result.json")


def test_interrupt_while_grading_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    import carscore.assess

    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(carscore.assess, "assess_intake", interrupt)
    result = cli("grade", str(SAMPLE), "--format", "json")
    assert result.exit_code == EXIT_INTERRUPTED
    assert result.stderr.strip().startswith("carscore: interrupted"), result.stderr
    assert result.stdout == ""


def test_output_into_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("grade", str(SAMPLE), "-f", "json", "-o", str(tmp_path / "nowhere" / "r.json"))
    assert result.exit_code == EXIT_USAGE
    assert "nowhere" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_read_only_output_file_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "locked.json"
    out.write_text("keep me\n")
    out.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    try:
        result = cli("grade", str(SAMPLE), "-f", "json", "-o", str(out))
        assert result.exit_code == EXIT_USAGE
        assert "read-only" in result.stderr
        assert out.read_text() == "keep me\n"
        no_leftovers(tmp_path, "locked.json")
    finally:
        out.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_output_that_is_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("grade", str(SAMPLE), "-f", "json", "-o", str(tmp_path))
    assert result.exit_code == EXIT_USAGE
    assert "folder" in result.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_to_a_full_device_is_a_sentence() -> None:
    result = cli("grade", str(SAMPLE), "-f", "json", "-o", "/dev/full")
    assert result.exit_code == EXIT_USAGE
    assert "disk is full" in result.stderr


def test_new_file_follows_the_umask_and_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    new = tmp_path / "new.json"
    assert cli("grade", str(SAMPLE), "-f", "json", "-o", str(new)).exit_code == EXIT_OK
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask
    new.chmod(0o640)
    assert cli("grade", str(SAMPLE), "-f", "json", "-o", str(new)).exit_code == EXIT_OK
    assert stat.S_IMODE(new.stat().st_mode) == 0o640


def test_output_dash_is_stdout() -> None:
    result = cli("grade", str(SAMPLE), "-f", "json", "-o", "-")
    assert result.exit_code == EXIT_OK
    assert json.loads(result.stdout)["patients"]
    assert not Path("-").exists()


@pytest.mark.parametrize("how", ["same path", "other spelling", "hard link"])
def test_refuses_to_write_onto_the_input_file(tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = patients_file(tmp_path / "in.csv", ["P1"])
    before = data.read_bytes()
    monkeypatch.chdir(tmp_path)
    target = {"same path": "in.csv", "other spelling": "./sub/../in.csv", "hard link": "link.csv"}[how]
    (tmp_path / "sub").mkdir()
    if how == "hard link":
        os.link(data, tmp_path / "link.csv")
    for command in ("grade", "cohort"):
        result = cli(command, "in.csv", "-f", "csv", "-o", target)
        assert result.exit_code == EXIT_USAGE, (command, result.stderr)
        assert "input file" in result.stderr
        assert data.read_bytes() == before


def test_refuses_to_write_onto_a_file_of_an_input_folder(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    data = patients_file(folder / "a.csv", ["P1"])
    before = data.read_bytes()
    result = cli("cohort", str(folder), "-f", "csv", "-o", str(data))
    assert result.exit_code == EXIT_USAGE
    assert "input file" in result.stderr
    assert data.read_bytes() == before


def test_refuses_to_write_onto_a_rule_file(tmp_path: Path) -> None:
    from carscore.ruleset import builtin_rules_dir

    rule = tmp_path / "thresholds.yaml"
    rule.write_bytes((builtin_rules_dir() / "thresholds.yaml").read_bytes())
    before = rule.read_bytes()
    result = cli("grade", str(SAMPLE), "-f", "json", "--rules", str(rule), "-o", str(rule))
    assert result.exit_code == EXIT_USAGE
    assert "input file" in result.stderr
    assert rule.read_bytes() == before


def test_output_failure_still_names_the_data_problems(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("patient_id,day,temp_c\nP1,0,abc\nP2,0,38.5\n")
    result = cli("grade", str(data), "-f", "json", "-o", str(tmp_path / "missing" / "r.json"))
    assert result.exit_code == EXIT_USAGE
    assert "column temp_c" in result.stderr and "'abc'" in result.stderr
    assert "does not exist" in result.stderr


# --------------------------------------------------------------------------- closed and broken streams


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX shell")


@posix_only
def test_closed_stdout_is_a_sentence(tmp_path: Path) -> None:
    for fmt in ("json", "table"):
        proc = shell(f"carscore grade '{SAMPLE}' -f {fmt} >&-", tmp_path)
        assert proc.returncode == EXIT_USAGE, proc.stderr
        assert "standard output is closed" in proc.stderr
    # a result written to a file does not need stdout
    proc = shell(f"carscore grade '{SAMPLE}' -f json -o r.json >&-", tmp_path)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["patients"]


@posix_only
def test_closed_stdin_with_dash_is_a_sentence(tmp_path: Path) -> None:
    for command in ("grade -", "cohort -"):
        proc = shell(f"carscore {command} -f json <&-", tmp_path)
        assert proc.returncode == EXIT_USAGE, proc.stderr
        assert "standard input is closed" in proc.stderr
        assert proc.stdout == ""


@posix_only
def test_closed_stderr_keeps_the_exit_code(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("patient_id,day,temp_c\nP1,0,abc\n")
    proc = shell("carscore grade bad.csv -f json 2>&-", tmp_path)
    assert proc.returncode == EXIT_DATA
    assert json.loads(proc.stdout)["problems"]


@posix_only
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_stdout_on_a_full_disk_is_a_sentence(tmp_path: Path) -> None:
    proc = shell(f"carscore grade '{SAMPLE}' >/dev/full", tmp_path)  # the table, written by Rich
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert "disk is full" in proc.stderr


def _stopping_reader(args: list[str], cwd: Path, lines: int) -> tuple[int, str]:
    """Run carscore with a reader that takes ``lines`` lines of its output and
    then closes the pipe (as ``| head -n 1`` does)."""
    child = subprocess.Popen([sys.executable, "-m", "carscore.cli.app", *args], cwd=cwd, env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    for _ in range(lines):
        child.stdout.readline()
    child.stdout.close()
    err = child.stderr.read().decode()
    return child.wait(timeout=60), err


@posix_only
def test_broken_pipe_is_a_sentence(tmp_path: Path) -> None:
    # a result much larger than a pipe's buffer, so that the reader stops before its end
    rows = [{"patient_id": f"P{i:05d}-" + "x" * 200, "day": 0, "temp_c": "38.2"} for i in range(1500)]  # ~0.4 MB
    write_rows(tmp_path / "many.csv", rows)
    code, err = _stopping_reader(["cohort", "many.csv", "-f", "csv"], tmp_path, lines=1)
    assert code == EXIT_USAGE, err
    assert "broken pipe" in err
    assert "Traceback" not in err and "Exception ignored" not in err


@posix_only
def test_reader_gone_before_the_table_is_a_sentence(tmp_path: Path) -> None:
    code, err = _stopping_reader(["grade", str(SAMPLE)], tmp_path, lines=0)
    assert code == EXIT_USAGE, err
    assert "broken pipe" in err
    assert "Traceback" not in err and "Exception ignored" not in err


@posix_only
def test_ctrl_c_exits_130_with_a_sentence(tmp_path: Path) -> None:
    """A real SIGINT while carscore waits for standard input."""
    wrapper = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, even if started ignoring it\n"
        "import carscore.cli.app as cli\n"
        "import carscore.cli.common as common\n"
        "read = common.read_stdin\n"
        "def announced():\n"
        "    sys.stderr.write('READING\\n'); sys.stderr.flush()\n"
        "    return read()\n"
        "common.read_stdin = announced\n"
        "sys.argv = ['carscore', 'grade', '-', '-f', 'json']\n"
        "cli.main()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", wrapper], cwd=tmp_path, env=_env(),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert child.stderr is not None and child.stdout is not None
    try:
        assert child.stderr.readline().decode().strip() == "READING"
        time.sleep(0.2)  # into the read itself
        child.send_signal(signal.SIGINT)
        code = child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    err = child.stderr.read().decode()
    assert code == EXIT_INTERRUPTED, err
    assert "interrupted" in err and "Traceback" not in err
    assert child.stdout.read() == b""


# --------------------------------------------------------------------------- problems in the JSON document


def test_problems_and_notes_are_in_the_json_document(tmp_path: Path) -> None:
    data = tmp_path / "mixed.csv"
    data.write_text("patient_id,day,temp_c,shoe_size\nP1,0,abc,42\nP2,0,38.5,41\n")
    result = cli("grade", str(data), "--format", "json")
    assert result.exit_code == EXIT_DATA
    doc = json.loads(result.stdout)
    problems = doc["problems"]
    for p in problems:
        assert set(p) == {"severity", "file", "row", "column", "value", "message"}, p
        assert p["severity"] in ("error", "note")
    errors = [p for p in problems if p["severity"] == "error"]
    notes = [p for p in problems if p["severity"] == "note"]
    assert any(p["file"] == str(data) and p["row"] == 2 and p["column"] == "temp_c" and p["value"] == "abc"
               for p in errors), errors  # fmt: skip
    assert any("shoe_size" in p["message"] for p in notes), notes
    # each is also named on stderr
    assert sum(ln.startswith("error:") for ln in result.stderr.splitlines()) == len(errors)
    assert sum(ln.startswith("note:") for ln in result.stderr.splitlines()) == len(notes)
    # the older key: the errors alone, without the severity
    assert doc["errors"] == [{k: v for k, v in p.items() if k != "severity"} for p in errors]
    assert [p["patient_id"] for p in doc["patients"]] == ["P2"]


def test_clean_input_has_an_empty_problem_list() -> None:
    doc = json.loads(cli("grade", str(SAMPLE), "-f", "json").stdout)
    assert doc["problems"] == [] and doc["errors"] == []


def test_cohort_problems_name_a_missing_file(tmp_path: Path) -> None:
    good = patients_file(tmp_path / "good.csv", ["P1"])
    result = cli("cohort", str(good), str(tmp_path / "gone.csv"), "-f", "json")
    assert result.exit_code == EXIT_DATA
    doc = json.loads(result.stdout)
    assert any(p["severity"] == "error" and p["file"].endswith("gone.csv") for p in doc["problems"]), doc["problems"]
    assert doc["cohort"]["n_patients"] == 1


# --------------------------------------------------------------------------- cohort inputs


def test_cohort_reads_stdin(tmp_path: Path) -> None:
    data = patients_file(tmp_path / "c.csv", ["P1", "P2"])
    from_file = json.loads(cli("cohort", str(data), "-f", "json").stdout)
    result = cli("cohort", "-", "-f", "json", stdin=data.read_bytes())
    assert result.exit_code == EXIT_OK, result.stderr
    from_stdin = json.loads(result.stdout)
    assert [p["patient_id"] for p in from_stdin["patients"]] == ["P1", "P2"]
    assert from_stdin["cohort"] == from_file["cohort"]


def test_cohort_passes_every_path_through_sources_from_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import carscore.sources

    data = patients_file(tmp_path / "c.csv", ["P1"])
    seen: list[list[str]] = []
    real = carscore.sources.sources_from_paths

    def spy(paths: list[str], *args: Any, **kwargs: Any) -> Any:
        seen.append(list(paths))
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(carscore.sources, "sources_from_paths", spy)
    cli("cohort", str(data), str(data), "-", "-f", "json", stdin=data.read_bytes())
    assert seen == [[str(data), str(data), "-"]]


def test_cohort_file_given_twice_is_not_a_duplicate_patient(tmp_path: Path) -> None:
    data = patients_file(tmp_path / "c.csv", ["P1", "P2"])
    result = cli("cohort", str(data), str(data), str(tmp_path), "-f", "json")
    assert result.exit_code == EXIT_OK, result.stderr
    doc = json.loads(result.stdout)
    assert [p["patient_id"] for p in doc["patients"]] == ["P1", "P2"]
    assert [p for p in doc["problems"] if p["severity"] == "error"] == []
    # read once, and said so (a note, in the document and on stderr)
    notes = [p["message"] for p in doc["problems"] if p["severity"] == "note"]
    assert notes and all("c.csv" in n for n in notes), notes
    assert sum(ln.startswith("note:") for ln in result.stderr.splitlines()) == len(notes)


# --------------------------------------------------------------------------- start-up


def test_help_does_not_import_the_heavy_modules() -> None:
    code = "import sys, carscore.cli.app; print(sorted(m for m in ('polars', 'rich', 'carscore.engine') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the end of the process


@posix_only
@pytest.mark.parametrize("target", ["pipe", "file"])
def test_the_whole_output_is_written_before_the_process_ends(tmp_path: Path, target: str) -> None:
    """The process ends without Python's shutdown (carscore.cli.guard.leave):
    standard output, piped or redirected to a file (block-buffered), is complete
    and the exit code is the command's."""
    bad = tmp_path / "bad.csv"
    bad.write_text(SAMPLE.read_text(encoding="utf-8") + "PX,1,0,abc" + "," * 10 + "\n", encoding="utf-8")
    for data, expected in ((SAMPLE, EXIT_OK), (bad, EXIT_DATA)):
        command = f"carscore cohort {data} --days --format json"
        out = shell(command if target == "pipe" else command + " > out.json", tmp_path)
        assert out.returncode == expected, out.stderr
        text = out.stdout if target == "pipe" else (tmp_path / "out.json").read_text(encoding="utf-8")
        reference = shell(command + " -o reference.json", tmp_path)
        assert reference.returncode == expected, reference.stderr
        assert text == (tmp_path / "reference.json").read_text(encoding="utf-8")
        assert all(p["days"] for p in json.loads(text)["patients"])
    usage = shell("carscore cohort --format nonsense x.csv", tmp_path)
    assert usage.returncode == EXIT_USAGE


def test_leave_ends_at_once_only_when_nothing_is_left_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import polars  # noqa: F401 - loaded, as in every grading command

    from carscore.cli import guard

    ended: list[int] = []
    flushed: list[str] = []

    class Recorded:
        def __init__(self, name: str) -> None:
            self.name = name

        def flush(self) -> None:
            flushed.append(self.name)

    monkeypatch.setattr(os, "_exit", ended.append)
    monkeypatch.setattr(sys, "stdout", Recorded("stdout"))
    monkeypatch.setattr(sys, "stderr", Recorded("stderr"))
    guard.leave(None)
    assert flushed == ["stdout", "stderr"]  # what is still buffered is written first
    guard.leave(EXIT_DATA)
    guard.leave(EXIT_INTERRUPTED)
    assert ended == [EXIT_OK, EXIT_DATA, EXIT_INTERRUPTED]
    # a message as the exit code: Python's exit prints it
    with pytest.raises(SystemExit) as info:
        guard.leave("carscore: stopped")
    assert info.value.code == "carscore: stopped"
    # another thread still running: Python's exit waits for it
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        with pytest.raises(SystemExit) as info:
            guard.leave(EXIT_OK)
        assert info.value.code == EXIT_OK
    finally:
        release.set()
        worker.join()

    # standard output that cannot be flushed: Python's exit reports it as before
    class Broken:
        def flush(self) -> None:
            raise BrokenPipeError

    monkeypatch.setattr(sys, "stdout", Broken())
    with pytest.raises(SystemExit) as info:
        guard.leave(EXIT_OK)
    assert ended == [EXIT_OK, EXIT_DATA, EXIT_INTERRUPTED]
