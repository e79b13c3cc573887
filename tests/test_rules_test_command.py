"""`carscore rules test`: a centre's own rule set, tested with its own case
file, with no file of the installed package edited."""

from __future__ import annotations

from pathlib import Path

from conftest import DEMO_SYSTEM
from typer.testing import CliRunner

from carscore.cli.app import app
from carscore.ruleset import builtin_rules_dir

CASE = """\
rules: [thresholds.yaml]
cases:
  - name: 60 copies is above an assay threshold of 50
    criterion: "our assay: below 50 copies/µg DNA is negative"
    days:
      - {day: 10, car_copies: 60}
    flags_exclude: [[car_below_threshold]]
  - name: 40 copies is below it
    criterion: "our assay: below 50 copies/µg DNA is negative"
    days:
      - {day: 10, car_copies: 40}
    flags_include: [[car_below_threshold]]
"""


def centre_rules(tmp_path: Path) -> Path:
    folder = tmp_path / "our_rules"
    folder.mkdir()
    text = (builtin_rules_dir() / "thresholds.yaml").read_text(encoding="utf-8")
    changed = text.replace("  car_copies_negative_below:\n    value: 100\n", "  car_copies_negative_below:\n    value: 50\n", 1)
    assert changed != text
    (folder / "thresholds.yaml").write_text(changed, encoding="utf-8")
    return folder


def test_a_centre_rule_set_passes_its_own_cases(tmp_path: Path) -> None:
    folder = centre_rules(tmp_path)
    (folder / "cases.yaml").write_text(CASE, encoding="utf-8")
    result = CliRunner().invoke(app, ["rules", "test", str(folder / "cases.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("2 passed, 0 failed")


def test_a_failing_case_is_named_with_why_and_exits_1(tmp_path: Path) -> None:
    folder = centre_rules(tmp_path)
    # the same cases against the built-in threshold of 100: the first fails
    (folder / "cases.yaml").write_text(CASE.replace("rules: [thresholds.yaml]\n", ""), encoding="utf-8")
    result = CliRunner().invoke(app, ["rules", "test", str(folder / "cases.yaml")])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "60 copies is above" in result.output and "car_below_threshold present" in result.output
    assert result.output.strip().endswith("1 passed, 1 failed")


def test_rules_option_adds_rule_files_to_a_case_file(tmp_path: Path) -> None:
    folder = centre_rules(tmp_path)
    (folder / "cases.yaml").write_text(CASE.replace("rules: [thresholds.yaml]\n", ""), encoding="utf-8")
    result = CliRunner().invoke(app, ["rules", "test", str(folder / "cases.yaml"), "--rules", str(folder / "thresholds.yaml")])
    assert result.exit_code == 0, result.output


def test_a_broken_case_file_is_a_usage_error_with_its_position(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - name: no days here\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["rules", "test", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "'days'" in result.output


def test_a_case_that_checks_nothing_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("cases:\n  - name: nothing asked\n    days:\n      - {day: 1, temp_c: 38}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["rules", "test", str(empty)])
    assert result.exit_code == 1 and "checks nothing" in result.output


EXTRA_INPUT = """\
inputs:
  rass_score: {type: integer, range: [-5, 4], merge: min, hint: "RASS runs from -5 to +4"}
"""
EXTRA_FLAG = """\
  deeply_sedated:
    when: "rass_score <= -3"
    description: "RASS -3 or below"
"""


def test_a_copied_rule_set_with_an_extra_input_column_is_validated_tested_and_used(tmp_path: Path) -> None:
    folder = centre_rules(tmp_path)
    rules = folder / "thresholds.yaml"
    text = rules.read_text(encoding="utf-8").replace("\nparameters:\n", "\n" + EXTRA_INPUT + "parameters:\n", 1)
    rules.write_text(text.replace("\nflags:\n", "\nflags:\n" + EXTRA_FLAG, 1), encoding="utf-8")
    (folder / "cases.yaml").write_text(
        CASE
        + "  - name: RASS -4 is deep sedation\n"
        + '    criterion: "our unit: RASS -3 or below"\n'
        + "    days:\n      - {day: 2, rass_score: -4}\n"
        + "    flags_include: [[deeply_sedated]]\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    validated = runner.invoke(app, ["rules", "validate", str(rules)])
    assert validated.exit_code == 0, validated.output
    tested = runner.invoke(app, ["rules", "test", str(folder / "cases.yaml")])
    assert tested.exit_code == 0 and tested.output.strip().endswith("3 passed, 0 failed"), tested.output
    data = tmp_path / "data.csv"
    data.write_text("patient_id,day,rass_score,car_copies\nA,1,-4,60\nB,1,9,60\n", encoding="utf-8")
    graded = runner.invoke(app, ["grade", str(data), "--rules", str(rules), "-f", "json"])
    assert graded.exit_code == 1  # B's RASS of 9 is outside the column's range
    assert "rass_score" in graded.stderr and "outside the plausible range" in graded.stderr


def test_an_input_column_may_not_redefine_a_contract_column(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text(
        'id: bad\ntitle: T\nversion: "1"\ncitation: c\ninputs:\n  temp_c: {type: number, merge: max}\n'
        'flags:\n  hot: "temp_c > 38"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["rules", "validate", str(rules)])
    assert result.exit_code == 2
    assert "bad.yaml:6" in result.stderr and "already a contract column" in result.stderr


def test_a_grading_system_is_graded_only_when_selected(tmp_path: Path) -> None:
    import json

    rules = tmp_path / "demo.yaml"
    rules.write_text(DEMO_SYSTEM, encoding="utf-8")
    data = tmp_path / "data.csv"
    data.write_text("patient_id,day,o2_device,temp_c\nA,1,nasal_cannula,38.5\nA,2,none,37\n", encoding="utf-8")
    runner = CliRunner()
    plain = json.loads(runner.invoke(app, ["grade", str(data), "--rules", str(rules), "-f", "json"]).stdout)
    assert "crs_grade_demo" not in plain["patients"][0]["days"][0]
    assert [r["id"] for r in plain["rulesets"]].count("demo_crs") == 0
    for choice in ("demo", "all", "astct,demo"):
        chosen = json.loads(
            runner.invoke(app, ["grade", str(data), "--rules", str(rules), "--systems", choice, "-f", "json"]).stdout
        )
        days = chosen["patients"][0]["days"]
        assert [d["crs_grade_demo"] for d in days] == [3, 0]
        assert [d["crs_grade"] for d in days] == [2, 0]  # ASTCT is always graded, and unchanged
    unknown = runner.invoke(app, ["grade", str(data), "--systems", "no_such_system"])
    assert unknown.exit_code == 2 and "no grading system 'no_such_system'" in unknown.stderr
