"""Grading systems as plug-ins (criteria §6, contract §5): a centre's copy of a
built-in system with its own threshold and input column, libraries of shared
definitions, durations from timed rows, and the systems never moving ASTCT."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_rows
from typer.testing import CliRunner

from carscore.assess import load_engine
from carscore.cli.app import app
from carscore.errors import RuleErrors
from carscore.ruleset import builtin_rules_dir

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def local_lee(tmp_path: Path) -> Path:
    """lee2014 copied outside the project: fever from 38.5 °C and a column of its own."""
    text = (builtin_rules_dir() / "lee2014.yaml").read_text(encoding="utf-8")
    text = text.replace("id: lee2014\n", "id: lee2014_local\n", 1).replace("system: lee2014\n", "system: lee2014_local\n", 1)
    text = text.replace("  fever_c:\n    value: 38.0\n", "  fever_c:\n    value: 38.5\n", 1)
    text = text.replace("crs_grade_lee2014", "crs_grade_local").replace("crs_lee2014", "crs_local").replace("crs_*_lee2014", "crs_*_local")
    text += (
        "\ninputs:\n  rigors: {type: boolean, merge: max}\n"
        "\nflags:\n  rigors_with_fever:\n    when: \"yes(rigors) and yes(fever)\"\n    description: rigors on a fever day\n"
    )
    path = tmp_path / "lee2014_local.yaml"
    path.write_text(text, encoding="utf-8")
    return path


CASES = """\
rules: [lee2014_local.yaml]
cases:
  - name: 38.2 °C is not fever at this centre, 38.5 °C is
    criterion: "local protocol: fever from 38.5 °C"
    days:
      - {day: 1, temp_c: 38.2, hypotension: no, o2_device: none}
      - {day: 2, temp_c: 38.5, hypotension: no, o2_device: none, rigors: yes}
    expect:
      crs_grade_local: [0, 1]
      crs_grade_lee2014: [null, null]
    flags_include: [[], [rigors_with_fever]]
    summary:
      crs_max_grade_local: 1
      crs_onset_day_local: 2
"""


def test_a_copied_system_with_its_own_threshold_and_column_is_validated_tested_and_used(tmp_path: Path) -> None:
    rules = local_lee(tmp_path)
    (tmp_path / "cases.yaml").write_text(CASES, encoding="utf-8")
    validated = runner.invoke(app, ["rules", "validate", str(rules)])
    assert validated.exit_code == 0, validated.stderr
    assert f"ok  {rules}  (lee2014_local" in validated.stdout
    tested = runner.invoke(app, ["rules", "test", str(tmp_path / "cases.yaml")])
    assert tested.exit_code == 0, tested.stdout + tested.stderr
    assert "1 passed, 0 failed" in tested.stdout
    data = write_rows(tmp_path / "p.csv", [{"day": 1, "temp_c": 38.2, "rigors": "yes"}, {"day": 2, "temp_c": 38.6, "rigors": "yes"}])
    graded = runner.invoke(app, ["grade", str(data), "--rules", str(rules), "--systems", "lee2014_local,lee2014", "-f", "json"])
    assert graded.exit_code == 0, graded.stderr
    import json

    (patient,) = json.loads(graded.stdout)["patients"]
    assert [d["crs_grade_local"] for d in patient["days"]] == [0, 1]
    assert [d["crs_grade_lee2014"] for d in patient["days"]] == [1, 1]  # the built-in keeps 38.0 °C
    assert patient["summary"]["crs_max_grade_local"] == 1


def test_every_system_leaves_astct_unchanged(tmp_path: Path) -> None:
    rows = [
        {"day": 1, "temp_c": 38.4, "hypotension": "yes", "vasopressors": 1, "norepinephrine_ug_min": 25, "vasopressin": "no"},
        {"day": 2, "temp_c": 37.0, "o2_device": "bipap", "fio2_pct": 50, "creatinine_ctcae_grade": 3, "cartox10_score": 5},
        {"day": 3, "temp_c": 37.1, "hypotension": "no", "o2_device": "none", "ice_score": 6, "seizure_type": "focal"},
    ]
    data = write_rows(tmp_path / "p.csv", rows)
    alone = runner.invoke(app, ["grade", str(data), "-f", "json"])
    every = runner.invoke(app, ["grade", str(data), "--systems", "all", "-f", "json"])
    assert alone.exit_code == every.exit_code == 0, alone.stderr + every.stderr
    import json

    one, all_ = json.loads(alone.stdout)["patients"][0], json.loads(every.stdout)["patients"][0]
    for key in ("crs_grade", "icans_grade"):
        assert [d[key] for d in one["days"]] == [d[key] for d in all_["days"]]
        assert [d["reasons"][key.split("_")[0]] for d in one["days"]] == [d["reasons"][key.split("_")[0]] for d in all_["days"]]
    for key in ("crs_max_grade", "icans_max_grade", "crs_onset_day", "icans_onset_day"):
        assert one["summary"][key] == all_["summary"][key]
    # and every system graded the course
    for key in ("crs_grade_lee2014", "crs_grade_penn", "crs_grade_mskcc", "crs_grade_cartox", "crs_grade_cartox_ped", "crs_grade_ctcae5", "cres_grade"):
        assert any(d[key] is not None for d in all_["days"]), key


LIBRARY = """\
id: shared
title: shared definitions
version: "1"
citation: test
library: true
parameters:
  fever_c: {value: 38.0, citation: test}
row_values:
  hot:
    value: "temp_c >= fever_c"
    combine: any
"""


def system(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f'id: {name}\ntitle: t\nversion: "1"\ncitation: test\nsystem: {name}\nincludes: [shared]\n{body}'
        f"decisions:\n  - outputs: [grade_{name}]\n    reason: {name}\n    cases:\n"
        "      - when: \"yes(hot)\"\n        then: 1\n        reason: hot\n      - then: 0\n        reason: not hot\n",
        encoding="utf-8",
    )
    return path


def test_each_including_system_grades_with_its_own_copy_of_the_parameters(tmp_path: Path) -> None:
    (tmp_path / "shared.yaml").write_text(LIBRARY, encoding="utf-8")
    system(tmp_path, "warm", "")
    system(tmp_path, "strict", "parameters:\n  fever_c: {value: 39.0, citation: our protocol}\n")
    engine = load_engine([tmp_path], builtins=False, systems=["all"])
    from carscore.intake import read_text

    days = engine.assess(read_text("patient_id,day,temp_c\nP,1,38.5\n", "p.csv", engine.contract).rows)
    assert days["grade_warm"].to_list() == [1] and days["grade_strict"].to_list() == [0]
    assert "shared" not in [rs.id for rs in engine.rulesets]  # a library is never graded itself


@pytest.mark.parametrize(
    "body, message",
    [
        ('row_values:\n  hot: "temp_c > 40"\n', "defined both here and in the included library"),
        ("parameters:\n  fever_c: {value: hot, citation: x}\n", "must be a number like it"),
    ],
)
def test_a_library_definition_is_not_silently_replaced(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "shared.yaml").write_text(LIBRARY, encoding="utf-8")
    system(tmp_path, "warm", body)
    with pytest.raises(RuleErrors, match=message):
        load_engine([tmp_path], builtins=False, systems=["all"])


def test_a_library_holds_definitions_only(tmp_path: Path) -> None:
    (tmp_path / "shared.yaml").write_text(LIBRARY + "summary:\n  x: \"max(day)\"\n", encoding="utf-8")
    with pytest.raises(RuleErrors, match="a library holds definitions only"):
        load_engine([tmp_path], builtins=False)


def test_an_unknown_library_is_named(tmp_path: Path) -> None:
    system(tmp_path, "warm", "")
    with pytest.raises(RuleErrors, match="includes 'shared', which is not a library in use"):
        load_engine([tmp_path], builtins=False, systems=["all"])


def test_hours_held_counts_a_run_of_timed_rows_across_midnight_and_is_ended_by_a_recorded_stop(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(
        'id: run\ntitle: t\nversion: "1"\ncitation: test\n'
        "row_values:\n  held:\n    value: \"hours_held(vasopressors >= 1)\"\n    combine: max\n"
        "decisions:\n  - outputs: [hours]\n    reason: run\n    cases:\n      - then: 0\n        reason: \"{held}\"\n",
        encoding="utf-8",
    )
    engine = load_engine([tmp_path], builtins=False)
    from carscore.intake import read_text

    csv = (
        "patient_id,day,time,vasopressors\n"
        "P,1,20:00,1\nP,1,23:00,\nP,2,01:30,2\n"  # a row without the state neither extends nor ends the run
        "P,2,04:00,0\nP,3,02:00,1\nP,3,,1\nP,3,05:00,1\n"  # stopped, restarted; an untimed row does not count
    )
    days = engine.assess(read_text(csv, "p.csv", engine.contract).rows)
    assert days["_reason_run"].to_list() == ["0", "5.5", "3"]  # day 1 starts the run at 20:00


def test_hours_held_reads_timed_rows_only_in_a_row_value(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(
        'id: run\ntitle: t\nversion: "1"\ncitation: test\nlet:\n  held: "hours_held(vasopressors >= 1)"\n'
        "decisions:\n  - outputs: [hours]\n    reason: run\n    cases:\n      - when: \"held > 1\"\n        then: 1\n        reason: x\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleErrors, match="use it in a row value"):
        load_engine([tmp_path], builtins=False)


def test_a_library_included_by_several_systems_with_the_same_parameters_is_computed_once() -> None:
    produced = [e.meta.output_name() for batch in load_engine(systems=["all"]).plan.row_batches for e in batch]
    agents = [name for name in produced if name.endswith("__agents")]
    assert len(agents) == 1, agents  # six systems include crs_findings: one column serves them all
    strict = load_engine(systems=["all"], overrides={"penn": {"count_vasopressin_as_agent": False}})
    produced = [e.meta.output_name() for batch in strict.plan.row_batches for e in batch]
    assert len([name for name in produced if name.endswith("__agents")]) == 2  # Penn's own reading is its own


GRADE_RULES = """\
id: shown
title: t
version: "1"
citation: test
decisions:
  - outputs: [grade_shown]
    reason: shown
    cases:
      - then: 0
        reason: nothing
"""


@pytest.mark.parametrize(
    "outputs, message",
    [
        ("  grade_shown: {kind: colour, label: G}\n", "kind must be one of"),
        ("  grade_shown: {kind: grade, label: G, summaries: crs_max}\n", "key pattern with one '\\*'"),
        ("  grade_shown: {kind: class, label: G, summaries: 'x_*'}\n", "for grades only"),
        ("  no_such_output: {kind: grade, label: G}\n", "not decided by any decision, nor a summary key"),
        ("  grade_shown: {kind: grade, label: G, words: [yes]}\n", "'words' are two"),
        ("  grade_shown: {label: G}\n", "kind"),
    ],
)
def test_a_wrong_presentation_is_named_with_its_place(tmp_path: Path, outputs: str, message: str) -> None:
    path = tmp_path / "shown.yaml"
    path.write_text(GRADE_RULES + "outputs:\n" + outputs, encoding="utf-8")
    with pytest.raises(RuleErrors, match=message) as caught:
        load_engine([path], builtins=False)
    assert all(e.file == str(path) and e.line >= 1 for e in caught.value.errors)


def test_a_summary_rate_needs_its_lowest_grade(tmp_path: Path) -> None:
    path = tmp_path / "shown.yaml"
    path.write_text(
        GRADE_RULES + 'summary:\n  worst: "max(grade_shown)"\noutputs:\n  worst: {kind: grade, label: W, rate: worst_any}\n',
        encoding="utf-8",
    )
    with pytest.raises(RuleErrors, match="needs 'at_least'"):
        load_engine([path], builtins=False)


def test_a_reason_only_decision_gives_no_values(tmp_path: Path) -> None:
    path = tmp_path / "words.yaml"
    path.write_text(
        'id: words\ntitle: t\nversion: "1"\ncitation: test\ndecisions:\n  - outputs: []\n    reason: words\n'
        "    cases:\n      - then: 1\n        reason: x\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleErrors, match="gives reasons only"):
        load_engine([path], builtins=False)


def test_an_unknown_system_is_named_with_every_system_known(tmp_path: Path) -> None:
    data = write_rows(tmp_path / "p.csv", [{"day": 1, "temp_c": 38.2}])
    result = runner.invoke(app, ["grade", str(data), "--systems", "nope"])
    assert result.exit_code == 2
    # the built-in systems are named though their files were not read for this run
    for system in ("lee2014", "penn", "mskcc", "cartox", "cartox_ped", "ctcae5", "cres"):
        assert system in result.stderr


def test_the_course_summary_shows_the_lines_the_rule_sets_declare() -> None:
    result = runner.invoke(app, ["grade", str(ROOT / "sample_cases" / "tp53_ball_two_infusions.csv")], env={"COLUMNS": "140"})
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "validated in large B-cell lymphoma, not in B-ALL" in text
    assert "ICAHT censored from" in text and "day 40" in text
    assert "IEC-HS suspected" in text


def test_built_in_systems_report_no_changed_parameters_and_a_changed_library_threshold_is_named(tmp_path: Path) -> None:
    """A system's parameters include its libraries': the built-in reference is
    compared with the libraries merged too, so only a real change is named."""
    from dataclasses import replace

    from carscore.rulesources import builtin_rulesets, describe, sources_of

    engine = load_engine(systems=["all"])
    assert all(not src.changed_parameters for src in sources_of(engine).values())
    changed = engine.rulesets
    lee = next(rs for rs in changed if rs.id == "lee2014")
    finding = next(n for n in lee.parameters if n not in _own_parameter_names("lee2014"))
    edited = replace(lee, parameters={**lee.parameters, finding: replace(lee.parameters[finding], value=12345)})
    described = describe([edited], builtin_rulesets())
    assert list(described["lee2014"].changed_parameters) == [finding]
    assert described["lee2014"].changed_parameters[finding]["value"] == 12345


def _own_parameter_names(system_id: str) -> set[str]:
    import yaml

    data = yaml.safe_load((builtin_rules_dir() / f"{system_id}.yaml").read_text(encoding="utf-8"))
    return set(data.get("parameters") or {})
