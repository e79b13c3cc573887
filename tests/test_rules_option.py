"""``--rules`` adds rule files to the built-in rule sets, and every result
says which rule sets produced it.

- a user rule set with the id of a built-in one replaces that one only; any
  other is added (so ``--rules my_rules/thresholds.yaml`` alone still grades
  CRS, ICANS, CNS status and marrow response with the built-in rules);
- the JSON ``rulesets`` entries carry each file's ``path`` (as given, or
  ``rules/<file>`` for a built-in one: never the absolute path of an
  installation), the ``sha256`` of its bytes, ``builtin``, and
  ``changed_parameters`` ({name: {value, builtin_value}});
- a name that no rule set in use defines is a usage error (exit 2) whose
  sentence says which rule set would define it;
- ``carscore rules list`` shows which rule sets are built-in and which come
  from --rules.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import write_rows
from typer.testing import CliRunner

from carscore.cli.app import app
from carscore.ruleset import builtin_rules_dir, read_rules, read_ruleset

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


def cli(*args: str, width: int = 160) -> Any:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(width), "NO_COLOR": "1"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr, result.stderr
    return result


def builtin_ids() -> list[str]:
    """Every built-in rule set (libraries are listed apart)."""
    return [rs.id for rs in read_rules([builtin_rules_dir()]) if not rs.library]


def default_ids() -> list[str]:
    """The built-in rule sets graded by default: those of ASTCT and those of no grading system."""
    return [rs.id for rs in read_rules([builtin_rules_dir()]) if not rs.library and rs.system in ("", "astct")]


def builtin_value(file: str, parameter: str) -> Any:
    return read_ruleset(builtin_rules_dir() / file).parameters[parameter].value


def with_parameter(file: str, parameter: str, value: Any) -> str:
    """The built-in rule file's text with one parameter's value changed."""
    text = (builtin_rules_dir() / file).read_text(encoding="utf-8")
    changed, n = re.subn(rf"(\n  {parameter}:\n    value: )[^\n]+", rf"\g<1>{value}", text, count=1)
    assert n == 1, f"{parameter}: value not found in {file}"
    return changed


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rule_file(path: Path, rs_id: str, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'id: {rs_id}\ntitle: Test rules\nversion: "1"\ncitation: "test"\n{body}', encoding="utf-8")
    return path


# a fever of 38.2 on day 1 (CRS grade 1 with the built-in 38.0 threshold), and
# CAR copies falling to 80 copies/µg on day 5 (below the built-in 100)
ROWS = [
    {"patient_id": "P1", "day": 0, "temp_c": "37.0", "hypotension": "no", "o2_device": "none", "car_copies": "10"},
    {"patient_id": "P1", "day": 1, "temp_c": "38.2", "hypotension": "no", "o2_device": "none", "car_copies": "5000"},
    {"patient_id": "P1", "day": 5, "temp_c": "37.0", "hypotension": "no", "o2_device": "none", "car_copies": "80"},
]


def graded(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {d["day"]: d for d in doc["patients"][0]["days"]}


def entries(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rs["id"]: rs for rs in doc["rulesets"]}


# --------------------------------------------------------------------------- adding and replacing


def test_one_rule_file_adds_to_the_builtin_rule_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_rows(tmp_path / "p.csv", ROWS)
    mine = tmp_path / "my_rules" / "thresholds.yaml"
    mine.parent.mkdir()
    mine.write_text(with_parameter("thresholds.yaml", "car_copies_negative_below", 50), encoding="utf-8")

    default = json.loads(cli("grade", "p.csv", "-f", "json").stdout)
    result = cli("grade", "p.csv", "-f", "json", "--rules", "my_rules/thresholds.yaml")
    assert result.exit_code == EXIT_OK, result.stderr
    doc = json.loads(result.stdout)

    # every built-in rule set still ran: the same CRS grades as without --rules
    assert [rs["id"] for rs in doc["rulesets"]] == default_ids()
    assert [d["crs_grade"] for d in graded(doc).values()] == [d["crs_grade"] for d in graded(default).values()]
    assert graded(doc)[1]["crs_grade"] == 1
    # and the user's thresholds replaced the built-in ones
    assert "car_below_threshold" in graded(default)[5]["flags"]
    assert "car_below_threshold" not in graded(doc)[5]["flags"]

    by_id = entries(doc)
    assert by_id["thresholds"] == {
        **{k: by_id["thresholds"][k] for k in ("id", "version", "citation")},
        "path": "my_rules/thresholds.yaml",
        "sha256": sha256(mine),
        "builtin": False,
        "changed_parameters": {
            "car_copies_negative_below": {
                "value": 50,
                "builtin_value": builtin_value("thresholds.yaml", "car_copies_negative_below"),
            }
        },
    }
    for rs_id, entry in by_id.items():
        assert not os.path.isabs(entry["path"]), entry["path"]
        if rs_id == "thresholds":
            continue
        file = Path(read_ruleset_path(rs_id))
        assert entry["path"] == f"rules/{file.name}"
        assert entry["builtin"] is True and entry["changed_parameters"] == {}
        assert entry["sha256"] == sha256(file)


def read_ruleset_path(rs_id: str) -> str:
    (rs,) = [rs for rs in read_rules([builtin_rules_dir()]) if rs.id == rs_id]
    return rs.file


def test_default_run_records_the_builtin_files() -> None:
    doc = json.loads(
        cli("grade", str(Path(__file__).parent.parent / "sample_cases" / "synthetic_grades.csv"), "-f", "json").stdout
    )
    for entry in doc["rulesets"]:
        assert set(entry) == {"id", "version", "citation", "path", "sha256", "builtin", "changed_parameters"}
        assert entry["builtin"] is True and entry["changed_parameters"] == {}
        assert re.fullmatch(r"rules/[a-z0-9_]+\.ya?ml", entry["path"]), entry["path"]
        assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])


def test_a_folder_replaces_the_builtins_it_holds_and_adds_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "crs.yaml").write_text(with_parameter("astct_crs.yaml", "fever_temp_c", 38.5), encoding="utf-8")
    rule_file(folder / "extra.yaml", "extra", 'flags:\n  warm_day: "temp_c >= 37.5"\n')
    data = write_rows(tmp_path / "p.csv", ROWS)

    result = cli("grade", str(data), "-f", "json", "--rules", str(folder))
    assert result.exit_code == EXIT_OK, result.stderr
    doc = json.loads(result.stdout)
    assert [rs["id"] for rs in doc["rulesets"]] == [*default_ids(), "extra"]
    days = graded(doc)
    assert days[1]["crs_grade"] == 0, "38.2 °C is no fever with the user's 38.5 threshold"
    assert "warm_day" in days[1]["flags"], "the added rule set ran"
    assert "car_below_threshold" in days[5]["flags"], "the built-in thresholds still ran"
    by_id = entries(doc)
    assert by_id["astct_crs"]["builtin"] is False
    assert by_id["astct_crs"]["path"] == str(folder / "crs.yaml")
    assert by_id["astct_crs"]["changed_parameters"] == {
        "fever_temp_c": {"value": 38.5, "builtin_value": builtin_value("astct_crs.yaml", "fever_temp_c")}
    }
    assert by_id["extra"]["builtin"] is False and by_id["extra"]["changed_parameters"] == {}
    assert by_id["astct_icans"]["builtin"] is True


def test_the_same_rule_file_given_twice_is_used_once(tmp_path: Path) -> None:
    mine = rule_file(tmp_path / "extra.yaml", "extra", 'flags:\n  warm_day: "temp_c >= 37.5"\n')
    data = write_rows(tmp_path / "p.csv", ROWS)
    result = cli("grade", str(data), "-f", "json", "--rules", str(mine), "--rules", str(tmp_path))
    assert result.exit_code == EXIT_OK, result.stderr
    assert [rs["id"] for rs in json.loads(result.stdout)["rulesets"]] == [*default_ids(), "extra"]


def test_two_files_with_one_id_is_a_usage_error(tmp_path: Path) -> None:
    a = rule_file(tmp_path / "a.yaml", "extra", 'flags:\n  warm_day: "temp_c >= 37.5"\n')
    b = rule_file(tmp_path / "b.yaml", "extra", 'flags:\n  cold_day: "temp_c < 36"\n')
    result = cli("grade", str(write_rows(tmp_path / "p.csv", ROWS)), "--rules", str(a), "--rules", str(b))
    assert result.exit_code == EXIT_USAGE
    assert "'extra'" in result.stderr and str(a) in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------- names no rule set defines


def _refused(tmp_path: Path, *rules: Path) -> str:
    data = write_rows(tmp_path / "p.csv", ROWS)
    args = [a for r in rules for a in ("--rules", str(r))]
    result = cli("grade", str(data), "-f", "json", *args)
    assert result.exit_code == EXIT_USAGE, result.stderr
    assert result.stdout == ""
    # cohort compiles the rules while its first chunks are read: refused the
    # same way, and nothing is left of the output it had begun
    for days in ([], ["--days"]):
        out = tmp_path / "cohort.json"
        cohort = cli("cohort", str(data), *days, "-f", "json", "-o", str(out), *args)
        assert cohort.exit_code == EXIT_USAGE and cohort.stderr == result.stderr, cohort.stderr
        assert not any(p.name.startswith((".cohort", "cohort")) for p in tmp_path.iterdir())
    return result.stderr


def test_a_name_no_rule_set_defines_is_named(tmp_path: Path) -> None:
    mine = rule_file(tmp_path / "extra.yaml", "extra", 'flags:\n  bad_day: "foo_grade >= 2"\n')
    err = _refused(tmp_path, mine)
    assert f"{mine}:6:" in err, err
    assert "no rule set in use defines 'foo_grade'" in err


def test_a_parameter_of_another_rule_set_is_explained(tmp_path: Path) -> None:
    mine = rule_file(tmp_path / "extra.yaml", "extra", 'flags:\n  hot_day: "temp_c >= fever_temp_c"\n')
    err = _refused(tmp_path, mine)
    assert f"{mine}:6:" in err
    assert "'fever_temp_c' is a parameter of rule set 'astct_crs'" in err


def test_a_value_of_a_replaced_builtin_is_explained(tmp_path: Path) -> None:
    # a user astct_crs that decides nothing: crs_max_grade is no longer defined
    crs = rule_file(tmp_path / "crs" / "astct_crs.yaml", "astct_crs", 'flags:\n  warm_day: "temp_c >= 37.5"\n')
    mine = rule_file(tmp_path / "extra.yaml", "extra", 'flags:\n  severe_course: "crs_max_grade >= 3"\n')
    err = _refused(tmp_path, crs, mine)
    line = next(ln for ln in err.splitlines() if str(mine) in ln)
    assert "crs_max_grade" in line and "built-in rule set 'astct_crs'" in line and f"{crs} replaces" in line, err


def test_a_builtin_left_out_is_explained(tmp_path: Path) -> None:
    from carscore.assess import load_engine
    from carscore.errors import RuleErrors

    mine = rule_file(tmp_path / "uses.yaml", "uses", 'flags:\n  severe_course: "crs_max_grade >= 3"\n')
    with pytest.raises(RuleErrors) as info:
        load_engine([mine], builtins=False)
    messages = [str(e) for e in info.value.errors]
    assert any("astct_crs" in m and "not in use" in m for m in messages), messages


# --------------------------------------------------------------------------- the library


def test_overrides_are_recorded_as_changed_parameters() -> None:
    from carscore.assess import load_engine
    from carscore.rulesources import sources_of

    engine = load_engine(overrides={"astct_crs": {"fever_temp_c": 39.5}})
    src = sources_of(engine)["astct_crs"]
    assert src.builtin is True
    assert src.changed_parameters == {
        "fever_temp_c": {"value": 39.5, "builtin_value": builtin_value("astct_crs.yaml", "fever_temp_c")}
    }


def test_an_engine_made_without_load_engine_is_described_too() -> None:
    from carscore.engine import Engine
    from carscore.rulesources import sources_of

    engine = Engine(read_rules([builtin_rules_dir()]))
    sources = sources_of(engine)
    assert [s.path for s in sources.values()] == [f"rules/{Path(rs.file).name}" for rs in engine.rulesets]
    assert all(s.builtin and s.sha256 for s in sources.values())


def test_changed_parameters_compares_values() -> None:
    from carscore.ruleset import Parameter, RuleSet
    from carscore.rulesources import changed_parameters

    def rs(**values: Any) -> RuleSet:
        r = RuleSet(id="x", title="T", version="1", citation="c", file="x.yaml")
        r.parameters = {k: Parameter(k, v, "c") for k, v in values.items()}
        return r

    builtin = rs(a=38, b=True, c=1, d="flow", gone=5)
    mine = rs(a=38.0, b=1, c=1.0, d="ngs", new=2)
    assert changed_parameters(mine, builtin) == {
        "b": {"value": 1, "builtin_value": True},  # true is not the number 1
        "d": {"value": "ngs", "builtin_value": "flow"},
        "gone": {"value": None, "builtin_value": 5},
        "new": {"value": 2, "builtin_value": None},
    }


# --------------------------------------------------------------------------- rules list / show / validate


def test_rules_list_shows_where_each_rule_set_comes_from(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "crs.yaml").write_text(with_parameter("astct_crs.yaml", "fever_temp_c", 38.5), encoding="utf-8")
    rule_file(folder / "extra.yaml", "extra", 'flags:\n  warm_day: "temp_c >= 37.5"\n')
    result = cli("rules", "list", "--rules", str(folder), width=400)
    assert result.exit_code == EXIT_OK, result.stderr
    rows = {ln.split()[0]: ln for ln in result.stdout.splitlines() if ln.strip() and ln.split()[0] in [*builtin_ids(), "extra"]}
    assert "--rules, replaces the built-in" in rows["astct_crs"] and "fever_temp_c" in rows["astct_crs"]
    assert "--rules, added" in rows["extra"] and "extra.yaml" in rows["extra"]
    for rs_id in builtin_ids():
        if rs_id != "astct_crs":
            assert "built-in" in rows[rs_id] and "--rules" not in rows[rs_id], rows[rs_id]
    plain = cli("rules", "list", width=400)
    assert plain.exit_code == EXIT_OK
    assert "--rules" not in plain.stdout and plain.stdout.count("built-in") == len(builtin_ids())


def test_rules_show_marks_a_changed_parameter(tmp_path: Path) -> None:
    mine = tmp_path / "crs.yaml"
    mine.write_text(with_parameter("astct_crs.yaml", "fever_temp_c", 38.5), encoding="utf-8")
    result = cli("rules", "show", "astct_crs", "--rules", str(mine), width=200)
    assert result.exit_code == EXIT_OK, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if "fever_temp_c" in ln and "38.5" in ln)
    assert f"built-in {builtin_value('astct_crs.yaml', 'fever_temp_c')}" in line
    assert "replaces the built-in" in result.stdout


def test_validate_checks_a_file_together_with_the_builtins(tmp_path: Path) -> None:
    mine = rule_file(tmp_path / "extra.yaml", "extra", 'flags:\n  severe_course: "crs_max_grade >= 3"\n')
    result = cli("rules", "validate", str(mine))
    assert result.exit_code == EXIT_OK, result.stderr
    lines = result.stdout.splitlines()
    assert f"ok  {mine}  (extra 1, added)" in lines
    assert len(lines) == len(builtin_ids()) + 1 + len([rs for rs in read_rules([builtin_rules_dir()]) if rs.library])


def test_rules_compiled_on_a_thread_give_the_same_plan_and_the_same_errors(tmp_path: Path) -> None:
    from carscore.assess import load_engine
    from carscore.errors import RuleErrors

    now, later = load_engine(), load_engine(plan_later=True)
    assert later.plan.summary_keys == now.plan.summary_keys
    assert [o.name for o in later.plan.outputs] == [o.name for o in now.plan.outputs]
    mine = rule_file(tmp_path / "extra.yaml", "extra", 'flags:\n  hot_day: "temp_c >= fever_temp_c"\n')
    with pytest.raises(RuleErrors) as at_once:
        load_engine([mine])
    deferred = load_engine([mine], plan_later=True)  # the rules are read; compiling them fails on its thread
    for _ in range(2):  # and is said each time the plan is asked for
        with pytest.raises(RuleErrors) as info:
            _ = deferred.plan
        assert [str(e) for e in info.value.errors] == [str(e) for e in at_once.value.errors]
