"""The rule language: safe YAML, validation messages with file:line:col,
rules as data (new flags, overrides, new grading systems) and the semantics
of every expression function on small tables of patient-days."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import assess_rows, locate, rows_to_csv

from carscore.assess import assess_intake
from carscore.compile import ANY, BOOL, COURSE, DAY, NUM, TEXT, CompileError, Compiler, Symbol
from carscore.engine import Engine
from carscore.errors import RuleError, RuleErrors
from carscore.expr import parse
from carscore.intake import read_text
from carscore.report import day_rows, summary_rows
from carscore.ruleset import builtin_rules_dir, read_rules

HEADER = 'id: {id}\ntitle: A test rule set\nversion: "1"\ncitation: "A test citation"\n'


# --- helpers -----------------------------------------------------------------


def rule_file(folder: Path, body: str, name: str = "rules.yaml", rs_id: str = "test_rules", header: bool = True) -> Path:
    """Write a rule file; the body follows the four header lines (id, title,
    version, citation) unless header is False."""
    text = textwrap.dedent(body).lstrip("\n")
    path = folder / name
    path.write_text((HEADER.format(id=rs_id) if header else "") + text, encoding="utf-8")
    return path


def rule_errors(*paths: Path) -> list[RuleError]:
    """Read and compile the rule files; they must be refused."""
    with pytest.raises(RuleErrors) as info:
        Engine(read_rules(list(paths)))
    errors = info.value.errors
    assert errors, "RuleErrors without any error"
    for e in errors:
        assert isinstance(e, RuleError)
    return errors


def assert_plain(err: RuleError) -> None:
    """A message is a sentence for a person, not a Python or polars dump."""
    msg = err.message
    assert msg and msg.strip() == msg
    assert "\n" not in msg
    for word in ("Traceback", "Error:", "polars", "Expr(", "<class", "object at 0x"):
        assert word not in msg, msg


def assert_at(err: RuleError, path: Path, line: int, col: int | tuple[int, ...]) -> None:
    cols = (col,) if isinstance(col, int) else col
    assert err.file == str(path), str(err)
    assert (err.line, err.col) in [(line, c) for c in cols], f"expected {path}:{line}:{cols}, got {err}"
    assert str(err).startswith(f"{path}:{err.line}:{err.col}: "), str(err)
    assert_plain(err)


def validate_cli(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carscore.cli.app", "rules", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def assess_with(engine: Engine, rows: list[dict[str, Any]]):
    intake = read_text(rows_to_csv(rows), "case.csv")
    assert not intake.problems, [str(p) for p in intake.problems]
    return assess_intake(intake, engine)


# --- safe YAML -----------------------------------------------------------------


def test_python_object_tag_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = rule_file(
        tmp_path,
        f'id: evil\ntitle: T\nversion: "1"\ncitation: !!python/object/apply:os.system ["touch {marker}"]\n',
        header=False,
    )
    errors = rule_errors(path)
    assert len(errors) == 1
    line, col = locate(path, "!!python")
    assert_at(errors[0], path, line, col)
    assert "not allowed" in errors[0].message
    assert not marker.exists()

    result = validate_cli(path)
    assert result.returncode == 2
    assert f"{path}:{line}:{col}:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    "text",
    [
        '!!python/object/apply:os.system ["touch {marker}"]\n',
        'id: evil\ntitle: T\nversion: "1"\ncitation: c\nflags:\n  x: !!python/object/apply:os.system ["touch {marker}"]\n',
        'id: evil\ntitle: T\nversion: "1"\ncitation: c\nparameters:\n  p: !!python/object/new:os.system ["touch {marker}"]\n',
        'id: evil\ntitle: T\nversion: "1"\ncitation: !!python/name:os.system\n',
        'id: evil\ntitle: T\nversion: "1"\ncitation: !!binary aGVsbG8=\n',
    ],
    ids=["root", "flag", "parameter", "name", "binary"],
)
def test_every_non_plain_tag_is_refused_with_position(tmp_path: Path, text: str) -> None:
    marker = tmp_path / "marker"
    path = rule_file(tmp_path, text.format(marker=marker), header=False)
    errors = rule_errors(path)
    line, col = locate(path, "!!")
    assert_at(errors[0], path, line, col)
    assert not marker.exists()


def test_duplicate_key_is_refused_naming_the_first(tmp_path: Path) -> None:
    path = rule_file(
        tmp_path,
        """
        flags:
          hot: "temp_c > 38"
          cold: "temp_c < 35"
          hot: "temp_c > 39"
        """,
    )
    errors = rule_errors(path)
    assert len(errors) == 1
    first_line, _ = locate(path, "hot:", 0)
    line, col = locate(path, "hot:", 1)
    assert_at(errors[0], path, line, col)
    assert "duplicate key 'hot'" in errors[0].message
    assert f"line {first_line}" in errors[0].message


def test_duplicate_top_level_key_is_refused(tmp_path: Path) -> None:
    path = rule_file(tmp_path, 'id: again\nflags:\n  hot: "temp_c > 38"\n')
    errors = rule_errors(path)
    line, col = locate(path, "id:", 1)
    assert_at(errors[0], path, line, col)
    assert "line 1" in errors[0].message


@pytest.mark.parametrize(
    "body",
    [
        """
        parameters:
          base: &base
            value: 1
            citation: c
          other:
            <<: *base
        """,
        """
        parameters:
          other:
            <<: {value: 1, citation: c}
        """,
    ],
    ids=["alias", "inline"],
)
def test_merge_keys_are_refused(tmp_path: Path, body: str) -> None:
    path = rule_file(tmp_path, body)
    errors = rule_errors(path)
    assert len(errors) == 1
    line, col = locate(path, "<<")
    assert_at(errors[0], path, line, col)
    assert "merge" in errors[0].message


@pytest.mark.parametrize(
    "body, needle",
    [
        ('flags:\n  hot: "temp_c > 38"\n   bad: x\n', "bad"),
        ('flags:\n\thot: "temp_c > 38"\n', "\t"),
        ('flags:\n  hot: "temp_c > 38\n', None),
    ],
    ids=["indentation", "tab", "unclosed-quote"],
)
def test_invalid_yaml_gives_file_line_col(tmp_path: Path, body: str, needle: str | None) -> None:
    path = rule_file(tmp_path, body)
    errors = rule_errors(path)
    assert len(errors) == 1
    err = errors[0]
    assert err.message.startswith("not valid YAML")
    assert err.file == str(path)
    assert err.line >= 1 and err.col >= 1
    if needle is not None:
        line, col = locate(path, needle)
        assert err.line == line, str(err)
    result = validate_cli(path)
    assert result.returncode == 2
    assert f"{path}:{err.line}:{err.col}:" in result.stderr


def test_empty_and_non_mapping_files_are_refused(tmp_path: Path) -> None:
    empty = rule_file(tmp_path, "", name="empty.yaml", header=False)
    listing = rule_file(tmp_path, "- a\n- b\n", name="list.yaml", header=False)
    errors = rule_errors(empty, listing)
    assert [(e.file, e.line, e.col) for e in errors] == [(str(empty), 1, 1), (str(listing), 1, 1)]
    for e in errors:
        assert_plain(e)


# --- validation errors -----------------------------------------------------------------

# (body, needle whose position the error must point at, nth occurrence,
#  words the message must contain, extra accepted column offsets)
VALIDATION_CASES = [
    pytest.param('flags:\n  hot: "tempc >= 38"\n', "tempc", 0, ["unknown name 'tempc'"], (), id="unknown-column"),
    pytest.param(
        'let:\n  fever: "temp_c >= 38 and o2_devic == \'none\'"\nflags:\n  hot: "temp_c > 40"\n',
        "o2_devic",
        0,
        ["unknown name 'o2_devic'"],
        (),
        id="unknown-column-in-let",
    ),
    pytest.param(
        'parameters:\n  fever_c:\n    value: 38\n    citation: c\nflags:\n  hot: "temp_c >= fever_limit"\n',
        "fever_limit",
        0,
        ["unknown name 'fever_limit'"],
        (),
        id="unknown-parameter",
    ),
    pytest.param('flags:\n  hot: "maxx(temp_c) > 38"\n', "maxx", 0, ["unknown function 'maxx'"], (), id="unknown-function"),
    pytest.param('flags:\n  hot: "ever(temp_c > 38, 2)"\n', "ever(", 0, ["ever()", "1", "2 given"], (), id="arity-too-many"),
    pytest.param(
        'flags:\n  hot: "temp_c > 38 and coalesce(sbp) < 90"\n',
        "coalesce",
        0,
        ["coalesce()", "1 given"],
        (),
        id="arity-too-few",
    ),
    pytest.param('flags:\n  hot: "temp_c >> 3"\n', ">>", 0, [], (1,), id="operator-shift"),
    pytest.param('flags:\n  hot: "temp_c = 38"\n', "=", 0, ["'=='"], (), id="operator-single-equals"),
    pytest.param('flags:\n  hot: "temp_c > 38 && sbp < 90"\n', "&&", 0, ["'and'"], (1,), id="operator-double-ampersand"),
    pytest.param('flags:\n  hot: "temp_c > 38 || sbp < 90"\n', "||", 0, ["'or'"], (1,), id="operator-double-bar"),
    pytest.param(
        "flags:\n  hot: \"o2_device == 'cpapp'\"\n",
        "'cpapp'",
        0,
        ["'cpapp' is not one of the values", "cpap"],
        (),
        id="enum-equals",
    ),
    pytest.param("flags:\n  hot: \"o2_device in ['cpap', 'cpapp']\"\n", "'cpapp'", 0, ["'cpapp'"], (), id="enum-in-list"),
    pytest.param("flags:\n  hot: \"'cpapp' != o2_device\"\n", "'cpapp'", 0, ["'cpapp'"], (), id="enum-reversed"),
    pytest.param("flags:\n  hot:\n    when: \"temp_c > 38 and sbp < 'low'\"\n", "'low'", 0, ["number"], (), id="type-mismatch"),
    pytest.param(
        'colour: red\nflags:\n  hot: "temp_c > 38"\n',
        "colour",
        0,
        ["unknown field 'colour'", "rule set"],
        (),
        id="unknown-field-ruleset",
    ),
    pytest.param(
        'decisions:\n  - outputs: [g]\n    cases:\n      - when: "temp_c > 38"\n        then: 1\n'
        "        because: hot\n      - then: 0\n",
        "because",
        0,
        ["unknown field 'because'", "case"],
        (),
        id="unknown-field-case",
    ),
    pytest.param(
        'parameters:\n  lim:\n    value: 38\n    citation: c\n    units: C\nflags:\n  hot: "temp_c > lim"\n',
        "units",
        0,
        ["unknown field 'units'", "parameter 'lim'"],
        (),
        id="unknown-field-parameter",
    ),
    pytest.param(
        'flags:\n  hot:\n    when: "temp_c > 38"\n    severity: high\n',
        "severity",
        0,
        ["unknown field 'severity'", "flag 'hot'"],
        (),
        id="unknown-field-flag",
    ),
    pytest.param(
        'decisions:\n  - outputs: [g]\n    cases:\n      - when: "temp_c > 38"\n        then: 1\n'
        '        worst:\n          - then: 2\n            when: "temp_c > 39"\n      - then: 0\n',
        'when: "temp_c > 38"',
        0,
        ["'then'", "'worst'"],
        (),
        id="case-then-and-worst",
    ),
    pytest.param(
        'summary:\n  hot: "temp_c > 38"\n',
        "temp_c > 38",
        0,
        ["summary", "whole course"],
        (),
        id="summary-not-course-level",
    ),
    pytest.param(
        'summary:\n  hot: "max(temp_c) > 38 and sbp < 90"\n',
        "max(temp_c)",
        0,
        ["summary", "whole course"],
        (),
        id="summary-mixed-levels",
    ),
    pytest.param(
        'let:\n  a: "b and temp_c > 38"\n  b: "a or sbp < 90"\nflags:\n  hot: "yes(a)"\n',
        "b and temp_c",
        0,
        ["circle", "a -> b -> a"],
        (),
        id="definition-cycle",
    ),
    pytest.param(
        'let:\n  a: "a and temp_c > 38"\nflags:\n  hot: "yes(a)"\n',
        "a and temp_c",
        0,
        ["circle"],
        (),
        id="definition-self-cycle",
    ),
    pytest.param(
        'decisions:\n  - outputs: [g]\n    cases:\n      - when: "temp_c > 38"\n        then: {h: 1}\n      - then: {g: 0}\n',
        "h: 1",
        0,
        ["'h' is not one of this decision's outputs"],
        (),
        id="then-unknown-output",
    ),
    pytest.param(
        'decisions:\n  - outputs: [g]\n    reason: g\n    cases:\n      - when: "temp_c > 38"\n        then: 1\n'
        '        reason: "hot: {tempc} C"\n      - then: 0\n',
        "tempc",
        0,
        ["unknown name 'tempc'"],
        (),
        id="unknown-name-in-reason",
    ),
    pytest.param(
        'decisions:\n  - outputs: [g]\n    cases:\n      - worst:\n          - then: 2\n            when: "temp_c > 39"\n'
        '          - then: 1\n            when: "tempc > 38"\n',
        "tempc",
        0,
        ["unknown name 'tempc'"],
        (),
        id="unknown-name-in-criterion",
    ),
    pytest.param('flags:\n  temp_c: "sbp < 90"\n', "sbp < 90", 0, ["input column"], (), id="redefine-input-column"),
]


@pytest.mark.parametrize("body, needle, nth, words, slack", VALIDATION_CASES)
def test_validation_error_position_and_sentence(
    tmp_path: Path, body: str, needle: str, nth: int, words: list[str], slack: tuple[int, ...]
) -> None:
    path = rule_file(tmp_path, body)
    errors = rule_errors(path)
    line, col = locate(path, needle, nth)
    matching = [e for e in errors if e.line == line]
    assert matching, f"no error on line {line}: {[str(e) for e in errors]}"
    err = matching[0]
    assert_at(err, path, line, (col, *(col + s for s in slack)))
    for w in words:
        assert w in err.message, err.message


@pytest.mark.parametrize("body, needle, nth, words, slack", VALIDATION_CASES)
def test_cli_validate_reports_position(
    tmp_path: Path, body: str, needle: str, nth: int, words: list[str], slack: tuple[int, ...]
) -> None:
    path = rule_file(tmp_path, body)
    line, col = locate(path, needle, nth)
    result = validate_cli(path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    accepted = [f"{path}:{line}:{c}:" for c in (col, *(col + s for s in slack))]
    assert any(a in result.stderr for a in accepted), result.stderr
    assert result.stdout.strip() == ""


def test_parameter_without_citation(tmp_path: Path) -> None:
    path = rule_file(tmp_path, 'parameters:\n  lim:\n    value: 38\n    unit: C\nflags:\n  hot: "temp_c > lim"\n')
    errors = rule_errors(path)
    assert len(errors) == 1
    name_line, _ = locate(path, "lim:")
    value_line, value_col = locate(path, "value:")
    err = errors[0]
    # the parameter's name, or the first line of its mapping
    assert (err.line, err.col) in [(name_line, 3), (value_line, value_col)], str(err)
    assert "parameter 'lim'" in err.message and "'citation'" in err.message
    assert_plain(err)


def test_parameter_with_blank_citation(tmp_path: Path) -> None:
    path = rule_file(tmp_path, 'parameters:\n  lim:\n    value: 38\n    citation: ""\nflags:\n  hot: "temp_c > lim"\n')
    errors = rule_errors(path)
    line, col = locate(path, '""')
    assert_at(errors[0], path, line, col)
    assert "citation" in errors[0].message


@pytest.mark.parametrize("missing", ["id", "title", "version", "citation"])
def test_missing_ruleset_field(tmp_path: Path, missing: str) -> None:
    fields = {"id": "t", "title": "T", "version": '"1"', "citation": "c"}
    del fields[missing]
    text = "".join(f"{k}: {v}\n" for k, v in fields.items()) + 'flags:\n  hot: "temp_c > 38"\n'
    path = rule_file(tmp_path, text, header=False)
    errors = rule_errors(path)
    assert len(errors) == 1
    assert_at(errors[0], path, 1, 1)
    assert f"missing the field '{missing}'" in errors[0].message
    result = validate_cli(path)
    assert result.returncode == 2
    assert f"{path}:1:1:" in result.stderr and missing in result.stderr


def test_all_missing_fields_reported_together(tmp_path: Path) -> None:
    path = rule_file(tmp_path, "description: nothing else\n", header=False)
    errors = rule_errors(path)
    named = sorted(e.message.split("'")[-2] for e in errors)
    assert named == ["citation", "id", "title", "version"]


def test_two_rule_sets_defining_the_same_output(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    first = rule_file(
        folder, "decisions:\n  - outputs: [my_grade]\n    cases:\n      - then: 1\n", name="a.yaml", rs_id="first_set"
    )
    second = rule_file(
        folder,
        'decisions:\n  - outputs: [my_grade]\n    cases:\n      - when: "temp_c > 38"\n        then: 2\n',
        name="b.yaml",
        rs_id="second_set",
    )
    errors = rule_errors(folder)
    assert len(errors) == 1
    line, col = locate(second, "outputs")
    assert_at(errors[0], second, line, col)
    assert "'my_grade'" in errors[0].message and "first_set" in errors[0].message
    assert str(first) in errors[0].message
    result = validate_cli(folder)
    assert result.returncode == 2
    assert f"{second}:{line}:{col}:" in result.stderr


def test_user_rule_set_cannot_redefine_a_builtin_output(tmp_path: Path) -> None:
    mine = rule_file(tmp_path, "decisions:\n  - outputs: [crs_grade]\n    cases:\n      - then: 0\n")
    errors = rule_errors(builtin_rules_dir(), mine)
    assert len(errors) == 1
    line, col = locate(mine, "outputs")
    assert_at(errors[0], mine, line, col)
    assert "astct_crs" in errors[0].message


def test_duplicate_ruleset_id(tmp_path: Path) -> None:
    a = rule_file(tmp_path, 'flags:\n  hot: "temp_c > 38"\n', name="a.yaml", rs_id="same")
    b = rule_file(tmp_path, 'flags:\n  cold: "temp_c < 35"\n', name="b.yaml", rs_id="same")
    with pytest.raises(RuleErrors) as info:
        read_rules([a, b])
    (err,) = info.value.errors
    assert err.file == str(b) and err.line == 1
    assert "'same'" in err.message and str(a) in err.message


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = rule_file(
        tmp_path,
        """
        colour: red
        parameters:
          lim:
            value: 38
        flags:
          hot: "temp_c = 38"
        """,
    )
    errors = rule_errors(path)
    lines = sorted(e.line for e in errors)
    assert lines == sorted([locate(path, "colour")[0], locate(path, "value:")[0], locate(path, "temp_c")[0]]) or lines == sorted(
        [locate(path, "colour")[0], locate(path, "lim:")[0], locate(path, "temp_c")[0]]
    )


def test_one_typo_gives_one_message(tmp_path: Path) -> None:
    """A misspelt column inside a let is reported once; the definitions that
    use that let must not be reported as 'unknown' although they are defined."""
    path = rule_file(
        tmp_path,
        """
        let:
          hot: "tempc >= 38"
        flags:
          fever_flag: "yes(hot)"
        """,
    )
    errors = rule_errors(path)
    assert [e.message for e in errors if "'hot'" in e.message] == []
    assert len(errors) == 1, [str(e) for e in errors]
    assert_at(errors[0], path, *locate(path, "tempc"))


@pytest.mark.parametrize(
    "body",
    [
        "flags:\n  hot: >-\n    temp_c > 38 and\n    tempc >= 39\n",
        "flags:\n  hot: >\n    temp_c > 38\n    and tempc >= 39\n",
        "flags:\n  hot: |\n    temp_c > 38 and\n    tempc >= 39\n",
        'flags:\n  hot: "temp_c > 38 and\n    tempc >= 39"\n',
        "flags:\n  hot:\n    when: >-\n      temp_c > 38\n      and tempc >= 39\n",
    ],
    ids=["folded-strip", "folded", "literal", "double-quoted-multiline", "flag-when-folded"],
)
def test_position_inside_multiline_condition(tmp_path: Path, body: str) -> None:
    """Long conditions are written over several lines (the built-in rules do it
    throughout): the error must point at the line and column of the mistake."""
    path = rule_file(tmp_path, body)
    errors = rule_errors(path)
    assert len(errors) == 1
    assert_at(errors[0], path, *locate(path, "tempc"))


def test_note_missing_with_unknown_column_is_refused(tmp_path: Path) -> None:
    path = rule_file(
        tmp_path,
        """
        decisions:
          - outputs: [g]
            reason: g
            note_missing: [tempc]
            cases:
              - when: "temp_c > 38"
                then: 1
              - then: 0
        """,
    )
    errors = rule_errors(path)
    line, _ = locate(path, "tempc")
    assert any(e.line == line and "tempc" in e.message for e in errors), [str(e) for e in errors]


def test_cli_validate_builtin_rules_ok() -> None:
    result = validate_cli()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    files = sorted(p.name for p in builtin_rules_dir().glob("*.yaml"))
    assert len(lines) == len(files)
    for name in files:
        assert any(line.startswith("ok") and name in line for line in lines), result.stdout
    explicit = validate_cli(builtin_rules_dir())
    assert explicit.returncode == 0 and explicit.stdout == result.stdout


def test_cli_validate_missing_path(tmp_path: Path) -> None:
    result = validate_cli(tmp_path / "nowhere.yaml")
    assert result.returncode == 2
    assert "nowhere.yaml" in result.stderr and "Traceback" not in result.stderr


def test_builtin_rules_read_and_compile() -> None:
    rulesets = read_rules([builtin_rules_dir()])
    engine = Engine(rulesets)
    assert {"crs_grade", "icans_grade", "bm_response"} <= {o.name for o in engine.plan.outputs}
    for rs in rulesets:
        assert rs.citation.strip()
        for p in rs.parameters.values():
            assert p.citation.strip(), f"{rs.id}.{p.name} has no citation"


# --- rules are data ----------------------------------------------------------------

FERRITIN_RULES = """\
id: ferritin
title: Hyperferritinaemia after CAR-T
version: "1.0"
citation: "Local test rule: ferritin above 10,000 ng/mL as a marker of hyperinflammation"
parameters:
  ferritin_high_above:
    value: 10000
    unit: ng/mL
    citation: "Test threshold: ferritin > 10,000 ng/mL (IEC-HS screening level)"
flags:
  ferritin_high:
    when: "ferritin > ferritin_high_above"
    description: "ferritin above the threshold"
summary:
  ferritin_peak: "max(ferritin)"
"""


@pytest.fixture
def ferritin_rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(builtin_rules_dir(), folder)
    (folder / "ferritin.yaml").write_text(FERRITIN_RULES, encoding="utf-8")
    return folder


FERRITIN_DAYS = [
    {"day": 0, "temp_c": 37.0, "ferritin": 800},
    {"day": 1, "temp_c": 38.4, "ferritin": 15000},
    {"day": 2, "temp_c": 37.5, "ferritin": 10000},
    {"day": 3, "temp_c": 37.2},
]


def test_user_defined_flag_shows_in_day_flags(ferritin_rules: Path) -> None:
    engine = Engine(read_rules([ferritin_rules]))
    assert "ferritin_high" in engine.plan.flags
    a = assess_with(engine, FERRITIN_DAYS)
    flags = a.days.sort(DAY)["flags"].to_list()
    assert ["ferritin_high" in f for f in flags] == [False, True, False, False]
    (course,) = day_rows(a).values()
    assert "ferritin_high" in course[1]["flags"]
    assert "fever" in course[1]["flags"]  # the built-in flags still work beside it
    assert [d["crs_grade"] for d in course] == [0, 1, 0, 0]
    assert a.summaries["ferritin_peak"].to_list() == [15000]
    assert summary_rows(a)[0]["ferritin_peak"] == 15000


def test_user_rules_folder_validates_on_cli(ferritin_rules: Path) -> None:
    result = validate_cli(ferritin_rules)
    assert result.returncode == 0, result.stderr
    assert "ferritin.yaml" in result.stdout and "ok" in result.stdout


def test_override_of_user_parameter(ferritin_rules: Path) -> None:
    engine = Engine(read_rules([ferritin_rules]), overrides={"ferritin": {"ferritin_high_above": 500}})
    a = assess_with(engine, FERRITIN_DAYS)
    flags = a.days.sort(DAY)["flags"].to_list()
    assert ["ferritin_high" in f for f in flags] == [True, True, True, False]


def test_parameter_override_changes_grades() -> None:
    days = [{"day": 1, "temp_c": 38.2, "hypotension": "no", "o2_device": "none"}]
    default = assess_rows(days)
    assert default.days["crs_grade"].to_list() == [1]
    raised = assess_rows(days, {"astct_crs": {"fever_temp_c": 38.5}})
    assert raised.days["crs_grade"].to_list() == [0]
    crs = next(rs for rs in raised.engine.rulesets if rs.id == "astct_crs")
    assert crs.parameters["fever_temp_c"].value == 38.5


def test_override_of_multiple_vasopressors_threshold() -> None:
    """With 'multiple vasopressors' raised to 3, fever with hypotension on two
    vasopressors is no longer grade 4 but still a vasopressor-requiring grade 3."""
    days = [{"day": 1, "temp_c": 38.5, "hypotension": "yes", "vasopressors": 2, "o2_device": "none"}]
    assert assess_rows(days).days["crs_grade"].to_list() == [4]
    assert assess_rows(days, {"astct_crs": {"multiple_vasopressors": 3}}).days["crs_grade"].to_list() == [3]


def test_override_does_not_change_the_loaded_rule_set() -> None:
    rulesets = read_rules([builtin_rules_dir()])
    Engine(rulesets, overrides={"astct_crs": {"fever_temp_c": 39.0}})
    crs = next(rs for rs in rulesets if rs.id == "astct_crs")
    assert crs.parameters["fever_temp_c"].value == 38.0


def test_unknown_override_parameter_is_refused() -> None:
    rulesets = read_rules([builtin_rules_dir()])
    with pytest.raises(RuleErrors) as info:
        Engine(rulesets, overrides={"astct_crs": {"fever_temp": 38.5}})
    (err,) = info.value.errors
    assert "fever_temp" in err.message and "astct_crs" in err.message
    assert_plain(err)


def test_override_of_unknown_rule_set_is_refused() -> None:
    rulesets = read_rules([builtin_rules_dir()])
    with pytest.raises(RuleErrors) as info:
        Engine(rulesets, overrides={"ctcae": {"fever_temp_c": 38.5}})
    assert "ctcae" in str(info.value)


def test_override_of_wrong_kind_is_refused() -> None:
    rulesets = read_rules([builtin_rules_dir()])
    with pytest.raises(RuleErrors) as info:
        Engine(rulesets, overrides={"astct_crs": {"fever_temp_c": "hot"}})
    assert any("number" in e.message for e in info.value.errors)


CTCAE_CRS = """\
id: ctcae_crs
title: Cytokine release syndrome, CTCAE v5.0 (simplified)
version: "5.0"
citation: >-
  National Cancer Institute. Common Terminology Criteria for Adverse Events (CTCAE) v5.0, 2017:
  Immune system disorders, cytokine release syndrome.
parameters:
  fever_c:
    value: 38.0
    unit: °C
    citation: "CTCAE v5.0 CRS grade 1: fever with or without constitutional symptoms"
  fio2_high_pct:
    value: 40
    unit: "%"
    citation: "CTCAE v5.0 CRS grade 3: hypoxia requiring FiO2 >= 40 %"
  room_air_pct:
    value: 21
    unit: "%"
    citation: "FiO2 of room air"
let:
  oxygen: "yes(fio2_pct > room_air_pct)"
decisions:
  - outputs: [ctcae_crs_grade]
    reason: ctcae_crs
    cases:
      - when: "not any_recorded(temp_c, fio2_pct, hypotension, vasopressors, o2_device)"
        then: null
      - worst:
          - then: 4
            when: "o2_device in ['cpap', 'bipap', 'mechanical_ventilation'] or vasopressors >= 2"
            reason: "life-threatening: positive pressure or several vasopressors"
          - then: 3
            when: "fio2_pct >= fio2_high_pct or vasopressors == 1"
            reason: "FiO2 {fio2_pct} % or one vasopressor"
          - then: 2
            when: "(oxygen and fio2_pct < fio2_high_pct) or yes(hypotension)"
            reason: "FiO2 {fio2_pct} % or hypotension responding to fluids"
          - then: 1
            when: "temp_c >= fever_c"
            reason: "fever {temp_c} °C"
      - then: 0
        reason: "no sign of CRS"
summary:
  ctcae_crs_max_grade: "max(ctcae_crs_grade)"
  ctcae_crs_onset_day: "first_day(ctcae_crs_grade >= 1)"
"""


def test_new_grading_system_from_yaml_alone(tmp_path: Path) -> None:
    path = tmp_path / "ctcae_crs.yaml"
    path.write_text(CTCAE_CRS, encoding="utf-8")
    engine = Engine(read_rules([builtin_rules_dir(), path]))
    outputs = {o.name: o for o in engine.plan.outputs}
    assert outputs["ctcae_crs_grade"].ruleset == "ctcae_crs"
    assert outputs["ctcae_crs_grade"].type == NUM
    assert "crs_grade" in outputs
    days = [
        {"day": 0, "temp_c": 37.0, "hypotension": "no", "o2_device": "none"},
        {"day": 1, "temp_c": 38.5, "hypotension": "no", "o2_device": "none"},
        {"day": 2, "temp_c": 38.6, "hypotension": "no", "o2_device": "facemask", "o2_flow_lpm": 10, "fio2_pct": 45},
        {"day": 3, "temp_c": 37.1, "hypotension": "no", "o2_device": "nasal_cannula", "o2_flow_lpm": 2, "fio2_pct": 28},
        {"day": 4, "temp_c": 37.0},
    ]
    a = assess_with(engine, days)
    table = a.days.sort(DAY)
    assert "ctcae_crs_grade" in table.columns and "crs_grade" in table.columns
    assert table["ctcae_crs_grade"].to_list() == [0, 1, 3, 2, 0]
    # the ASTCT grade is computed by its own rules, unchanged (no fever on day 3: 0)
    assert table["crs_grade"].to_list() == [0, 1, 3, 0, 0]
    reasons = table["_reason_ctcae_crs"].to_list()
    assert "FiO2 45 %" in reasons[2]
    (course,) = day_rows(a).values()
    assert [d["ctcae_crs_grade"] for d in course] == [0, 1, 3, 2, 0]
    assert course[2]["reasons"]["ctcae_crs"] == reasons[2]
    summary = summary_rows(a)[0]
    assert summary["ctcae_crs_max_grade"] == 3 and summary["ctcae_crs_onset_day"] == 1
    assert summary["crs_max_grade"] == 3

    result = validate_cli(builtin_rules_dir(), path)
    assert result.returncode == 0, result.stderr
    assert "ctcae_crs" in result.stdout


def test_new_grading_system_alone(tmp_path: Path) -> None:
    """A rule folder without the built-in rules grades only its own system."""
    path = tmp_path / "ctcae_crs.yaml"
    path.write_text(CTCAE_CRS, encoding="utf-8")
    engine = Engine(read_rules([path]))
    assert [o.name for o in engine.plan.outputs] == ["ctcae_crs_grade"]
    a = assess_with(engine, [{"day": 1, "temp_c": 38.1}, {"day": 2, "vasopressors": 2}])
    assert a.days.sort(DAY)["ctcae_crs_grade"].to_list() == [1, 4]
    assert "crs_grade" not in a.days.columns


# --- expression functions on tiny tables ----------------------------------------------

_KINDS = {pl.Float64: NUM, pl.Int64: NUM, pl.Int32: NUM, pl.Boolean: BOOL, pl.String: TEXT}


def table(courses: list[int], days: list[int], **columns: list[Any]) -> pl.DataFrame:
    df = pl.DataFrame({COURSE: courses, DAY: days, **columns}, strict=False)
    df = df.with_columns(pl.col(COURSE).cast(pl.UInt32), pl.col(DAY).cast(pl.Int64))
    assert df.equals(df.sort([COURSE, DAY]))
    return df


def compile_on(
    df: pl.DataFrame, text: str, params: dict[str, Any] | None = None, values: dict[str, tuple[str, ...]] | None = None
):
    def resolve(name: str) -> Symbol | None:
        if params and name in params:
            v = params[name]
            kind = BOOL if isinstance(v, bool) else NUM if isinstance(v, (int, float)) else TEXT
            return Symbol(pl.lit(v), kind, "course", constant=v, is_constant=True)
        if name in df.columns:
            return Symbol(pl.col(name), _KINDS.get(df.schema[name], ANY), "day", (values or {}).get(name))
        return None

    return Compiler(resolve).compile(parse(text))


def ev(df: pl.DataFrame, text: str, **kw: Any) -> list[Any]:
    compiled = compile_on(df, text, **kw)
    return df.select(compiled.expr.alias("result"))["result"].to_list()


def per_course(df: pl.DataFrame, text: str, **kw: Any) -> list[Any]:
    """A course aggregate: one value per course, the same on each of its days."""
    compiled = compile_on(df, text, **kw)
    assert compiled.level == "course", text
    out = df.select(pl.col(COURSE), compiled.expr.alias("result"))
    values = []
    for _, group in out.group_by(COURSE, maintain_order=True):
        distinct = group["result"].unique(maintain_order=True).to_list()
        assert len(distinct) == 1, f"{text}: not constant in a course: {distinct}"
        values.append(distinct[0])
    return values


@pytest.fixture
def timeline() -> pl.DataFrame:
    # course 0: days 0-4, course 1: days 0-3
    return table(
        [0, 0, 0, 0, 0, 1, 1, 1, 1],
        [0, 1, 2, 3, 4, 0, 1, 2, 3],
        f=[False, True, False, None, True, False, False, True, False],
        r=[False, False, True, False, False, False, False, False, True],
    )


def test_ever(timeline: pl.DataFrame) -> None:
    assert ev(timeline, "ever(f)") == [False, True, True, True, True, False, False, True, True]


def test_ever_before(timeline: pl.DataFrame) -> None:
    assert ev(timeline, "ever_before(f)") == [False, False, True, True, True, False, False, False, True]


def test_ever_since_resets(timeline: pl.DataFrame) -> None:
    assert ev(timeline, "ever_since(f, r)") == [False, True, False, False, True, False, False, True, False]


def test_ever_since_reset_day_starts_afresh() -> None:
    df = table(
        [0, 0, 0, 0, 1, 1],
        [1, 2, 3, 4, 1, 2],
        f=[True, False, True, False, False, False],
        r=[False, True, True, False, False, False],
    )
    # the reset on day 2 clears day 1; on day 3 a new reset, and the condition holds that same day
    assert ev(df, "ever_since(f, r)") == [True, False, True, True, False, False]


def test_is_first(timeline: pl.DataFrame) -> None:
    assert ev(timeline, "is_first(f)") == [False, True, False, False, False, False, False, True, False]


def test_consecutive_days() -> None:
    df = table(
        [0, 0, 0, 0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 4, 5, 0, 1, 2], f=[True, True, False, True, None, True, True, True, True]
    )
    assert ev(df, "consecutive_days(f)") == [1, 2, 0, 1, 0, 1, 1, 2, 3]


def test_consecutive_days_breaks_on_a_missing_day() -> None:
    """Days 1, 2, 3 and 5 held, day 4 has no row: on day 5 the condition has
    not held 4 days in a row (a day without data does not hold, as in ever())."""
    df = table([0, 0, 0, 0], [1, 2, 3, 5], f=[True, True, True, True])
    assert ev(df, "consecutive_days(f)") == [1, 2, 3, 1]


@pytest.fixture
def sparse() -> pl.DataFrame:
    # course 0: days 0-7 with x on days 1 and 3; course 1: days 0-3 with x on day 3
    return table(
        [0] * 8 + [1] * 4,
        list(range(8)) + list(range(4)),
        x=[None, 10.0, None, 30.0, None, None, None, None, None, None, None, 5.0],
        s=[None, "a", None, "b", None, None, None, None, None, None, None, "c"],
    )


def test_nearest(sparse: pl.DataFrame) -> None:
    assert ev(sparse, "nearest(x, 1)") == [
        10.0,  # day 0: day 1 is one day away
        10.0,  # same day
        10.0,  # day 2: days 1 and 3 equally near, the earlier wins
        30.0,  # same day
        30.0,  # day 4: day 3, one day back
        None,
        None,
        None,  # more than one day from any value
        None,
        None,  # course 1 does not see course 0's values
        5.0,
        5.0,
    ]


def test_nearest_wider_window(sparse: pl.DataFrame) -> None:
    assert ev(sparse, "nearest(x, 2)") == [10.0, 10.0, 10.0, 30.0, 30.0, 30.0, None, None, None, 5.0, 5.0, 5.0]


def test_nearest_window_from_parameter_and_text(sparse: pl.DataFrame) -> None:
    assert ev(sparse, "nearest(s, w)", params={"w": 1}) == ["a", "a", "a", "b", "b", None, None, None, None, None, "c", "c"]


def test_nearest_prefers_same_day_over_nearer_neighbours() -> None:
    df = table([0, 0, 0, 1, 1], [1, 2, 3, 1, 2], x=[1.0, 2.0, 3.0, None, 4.0])
    assert ev(df, "nearest(x, 5)") == [1.0, 2.0, 3.0, 4.0, 4.0]


def test_nearest_uses_day_numbers_not_rows() -> None:
    df = table([0, 0, 0, 1, 1], [0, 5, 6, 0, 10], x=[7.0, None, 8.0, 1.0, None])
    # day 5: day 6 is one day away, day 0 five days; in course 1, day 10 is 10 days from day 0
    assert ev(df, "nearest(x, 2)") == [7.0, 8.0, 8.0, 1.0, None]


def test_nearest_day(sparse: pl.DataFrame) -> None:
    assert ev(sparse, "nearest_day(x, 1)") == [1, 1, 1, 3, 3, None, None, None, None, None, 3, 3]


def test_previous(sparse: pl.DataFrame) -> None:
    assert ev(sparse, "previous(x)") == [
        None,
        None,
        10.0,
        10.0,
        30.0,
        30.0,
        30.0,
        30.0,
        None,
        None,
        None,
        None,  # no leak from course 0
    ]
    assert ev(sparse, "previous(s)")[:5] == [None, None, "a", "a", "b"]


@pytest.fixture
def values() -> pl.DataFrame:
    return table(
        [0, 0, 0, 0, 1, 1, 1],
        [1, 2, 3, 5, 1, 2, 4],
        x=[4.0, 7.0, 7.0, 2.0, 9.0, None, 9.0],
        s=["NR", "CRi", "CR", "NR", "CRi", "NR", None],
        f=[True, True, True, True, True, False, True],
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("max(x)", [7.0, 9.0]),
        ("max(x, day >= 5)", [2.0, None]),
        ("min(x)", [2.0, 9.0]),
        ("min(x, day < 3)", [4.0, 9.0]),
        ("count(f)", [4, 2]),
        ("count(x > 5)", [2, 2]),
        ("count(x > 100)", [0, 0]),
        ("any(x > 8)", [False, True]),
        ("any(s == 'CR')", [True, False]),
        ("first_day(x > 5)", [2, 1]),
        ("first_day(x > 100)", [None, None]),
        ("last_day(x > 5)", [3, 4]),
        ("last_day(s == 'NR')", [5, 2]),
        ("first(x)", [4.0, 9.0]),
        ("first(x, day > 1)", [7.0, 9.0]),
        ("first(s)", ["NR", "CRi"]),
        ("last(x)", [2.0, 9.0]),
        ("last(x, day < 5)", [7.0, 9.0]),
        ("last(s)", ["NR", "NR"]),
        ("last(s, f)", ["NR", "CRi"]),
        ("day_of_max(x)", [2, 1]),
        ("day_of_max(x, day > 2)", [3, 4]),
        ("best(s, ['CR', 'CRi', 'NR'])", ["CR", "CRi"]),
        ("best(s, ['CR', 'CRi', 'NR'], day < 3)", ["CRi", "CRi"]),
        ("best(s, ['NR', 'CRi', 'CR'])", ["NR", "NR"]),
        ("best(s, ['CR'])", ["CR", None]),
    ],
)
def test_course_aggregates(values: pl.DataFrame, text: str, expected: list[Any]) -> None:
    assert per_course(values, text) == expected


def test_day_of_max_ties_take_the_earliest_day() -> None:
    df = table([0, 0, 0, 1, 1, 1], [3, 4, 6, 1, 2, 3], x=[5.0, 8.0, 8.0, 8.0, 1.0, 8.0])
    assert per_course(df, "day_of_max(x)") == [4, 1]


def test_aggregates_usable_on_every_day(values: pl.DataFrame) -> None:
    assert ev(values, "x == max(x)") == [False, True, True, False, True, None, True]
    assert ev(values, "day - first_day(x > 5)") == [-1, 0, 1, 3, 0, 1, 3]


@pytest.fixture
def counts() -> pl.DataFrame:
    # course 0: sparse counts; course 1: one low count; course 2: none in the window
    return table(
        [0] * 6 + [1] * 3 + [2] * 2,
        [1, 3, 5, 9, 10, 20] + [0, 4, 8] + [35, 40],
        x=[0.3, 0.6, 0.2, 0.9, 0.8, 0.4, 1.0, 0.2, 1.0, 0.1, 0.1],
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        # course 0, interpolated: days 1-2 below (0.3, 0.45), 3 above (0.6), 4-6 below (0.4, 0.2, 0.375),
        # 7-17 above (0.55 ... 0.52), 18-20 below (0.48, 0.44, 0.4): 2 + 1 (non-stable) + 3 + 3 = 9.
        # course 1: 1.0, 0.8, 0.6, 0.4, 0.2, 0.4, 0.6, 0.8, 1.0 on days 0-8: days 3-5 = 3
        ("0.5, 0, 30, 3", [9, 3, None]),
        ("0.5, 0, 5, 3", [5, 2, None]),  # only anchors within days 0-5 (course 1: days 0 and 4)
        ("0.5, 0, 30, 1", [8, 3, None]),  # a single day above is already a recovery
        ("0.1, 0, 30, 3", [0, 0, None]),  # nothing at or below 0.1 in the window
        ("0.5, 36, 40, 3", [None, None, 1]),  # anchors outside the window are never used
    ],
)
def test_days_at_or_below(counts: pl.DataFrame, args: str, expected: list[Any]) -> None:
    assert per_course(counts, f"days_at_or_below(x, {args})") == expected


def test_days_below_is_strict() -> None:
    df = table([0] * 3, [0, 1, 2], x=[20.0, 20.0, 19.0])
    assert per_course(df, "days_below(x, 20, 0, 30, 3)") == [1]
    assert per_course(df, "days_at_or_below(x, 20, 0, 30, 3)") == [3]


def test_days_at_or_below_sparse_high_counts_are_not_neutropenic() -> None:
    # criteria §5: ANC 0.3 on days 1 and 30 with 1.5 on every day between is 2 days
    days = list(range(1, 31))
    df = table([0] * 30, days, x=[0.3] + [1.5] * 28 + [0.3])
    assert per_course(df, "days_at_or_below(x, 0.5, 0, 30, 3)") == [2]
    # counts every other day: the interpolated days between 0.3 and 1.5 are above 0.5
    alternate = [1, *range(3, 30, 2), 30]
    sparse = table([0] * len(alternate), alternate, x=[0.3] + [1.5] * (len(alternate) - 2) + [0.3])
    assert per_course(sparse, "days_at_or_below(x, 0.5, 0, 30, 3)") == [2]


def test_days_at_or_below_window_from_a_course_value(counts: pl.DataFrame) -> None:
    assert per_course(counts, "days_at_or_below(x, 0.5, 0, min(day) + 4, 3)") == [5, 2, 1]


def test_days_at_or_below_window_must_be_per_course(counts: pl.DataFrame) -> None:
    with pytest.raises(CompileError) as info:
        compile_on(counts, "days_at_or_below(x, 0.5, 0, day, 3)")
    assert "course value" in info.value.message


def test_timeline_functions_need_a_condition(timeline: pl.DataFrame) -> None:
    with pytest.raises(CompileError) as info:
        compile_on(timeline, "ever(day)")
    assert "boolean" in info.value.message
    assert info.value.offset == 5


def test_nearest_window_must_be_fixed(sparse: pl.DataFrame) -> None:
    with pytest.raises(CompileError) as info:
        compile_on(sparse, "nearest(x, day)")
    assert info.value.offset == 11


def test_enum_literal_checked_by_compiler() -> None:
    df = table([0], [0], o2=["cpap"])
    with pytest.raises(CompileError) as info:
        compile_on(df, "o2 == 'cpapp'", values={"o2": ("none", "cpap")})
    assert info.value.offset == 6
    assert ev(df, "o2 == 'cpap'", values={"o2": ("none", "cpap")}) == [True]


# --- null semantics ---------------------------------------------------------------


@pytest.fixture
def three_valued() -> pl.DataFrame:
    return table(
        [0] * 9,
        list(range(9)),
        a=[True, True, True, False, False, False, None, None, None],
        b=[True, False, None, True, False, None, True, False, None],
        n=[1, 2, None, 3, None, 5, None, 1, 2],
        x=[1.0, 2.0, None, 3.0, None, 5.0, None, 1.0, 2.0],
        s=["p", None, "q", "p", None, "r", None, "q", "p"],
    )


def test_kleene_and_or_not(three_valued: pl.DataFrame) -> None:
    T, F, N = True, False, None
    assert ev(three_valued, "a and b") == [T, F, N, F, F, F, N, F, N]
    assert ev(three_valued, "a or b") == [T, T, T, T, F, N, T, N, N]
    assert ev(three_valued, "not a") == [F, F, F, T, T, T, N, N, N]


def test_recorded_and_yes(three_valued: pl.DataFrame) -> None:
    assert ev(three_valued, "recorded(a)") == [True] * 6 + [False] * 3
    assert ev(three_valued, "yes(a)") == [True] * 3 + [False] * 6
    assert ev(three_valued, "yes(a and b)") == [True] + [False] * 8
    assert ev(three_valued, "recorded(x > 1)") == [True, True, False, True, False, True, False, True, True]
    assert ev(three_valued, "any_recorded(x, s)") == [True, True, True, True, False, True, False, True, True]


def test_coalesce(three_valued: pl.DataFrame) -> None:
    assert ev(three_valued, "coalesce(x, 0)") == [1.0, 2.0, 0.0, 3.0, 0.0, 5.0, 0.0, 1.0, 2.0]
    assert ev(three_valued, "coalesce(a, b)") == [True, True, True, False, False, False, True, False, None]
    assert ev(three_valued, "coalesce(s, 'none')")[:3] == ["p", "none", "q"]
    with pytest.raises(CompileError):
        compile_on(three_valued, "coalesce(x, 'none')")


def test_comparisons_with_null_are_unknown(three_valued: pl.DataFrame) -> None:
    N = None
    assert ev(three_valued, "x > 1") == [False, True, N, True, N, True, N, False, True]
    assert ev(three_valued, "x == 2") == [False, True, N, False, N, False, N, False, True]
    assert ev(three_valued, "x != 2") == [True, False, N, True, N, True, N, True, False]
    assert ev(three_valued, "s == 'p'") == [True, N, False, True, N, False, N, False, True]
    assert ev(three_valued, "x + 1 > 2") == [False, True, N, True, N, True, N, False, True]
    # unknown joined with a false fact is false, with a true fact unknown
    assert ev(three_valued, "x > 1 and false") == [False] * 9
    assert ev(three_valued, "x > 1 or true") == [True] * 9


def test_membership_with_null_is_unknown(three_valued: pl.DataFrame) -> None:
    N = None
    assert ev(three_valued, "n in [1, 3]") == [True, False, N, True, N, False, N, True, False]
    assert ev(three_valued, "n not in [1, 3]") == [False, True, N, False, N, True, N, False, True]
    assert ev(three_valued, "s in ['p', 'q']") == [True, N, True, True, N, False, N, True, True]


def test_membership_of_a_number_column_in_whole_numbers(three_valued: pl.DataFrame) -> None:
    """Measured values are decimals; a list of whole numbers must still match."""
    N = None
    assert ev(three_valued, "x in [1, 3]") == [True, False, N, True, N, False, N, True, False]


def test_membership_in_mixed_number_list(three_valued: pl.DataFrame) -> None:
    N = None
    assert ev(three_valued, "x in [1, 2.0]") == [True, True, N, False, N, False, N, True, True]


def test_unrecorded_days_do_not_hold_in_timeline_functions(three_valued: pl.DataFrame) -> None:
    assert ev(three_valued, "ever(a and b)") == [True] * 9
    assert per_course(three_valued, "count(b)") == [3]
    assert per_course(three_valued, "any(x > 10)") == [False]
    assert per_course(three_valued, "max(x, a)") == [2.0]
    assert ev(three_valued, "consecutive_days(a)") == [1, 2, 3, 0, 0, 0, 0, 0, 0]


def test_numeric_membership_in_rule_file(tmp_path: Path) -> None:
    """'temp_c in [38, 39]' passes validation, so it must also grade."""
    path = rule_file(tmp_path, 'flags:\n  round_fever: "temp_c in [38, 39]"\n')
    engine = Engine(read_rules([path]))
    a = assess_with(engine, [{"day": 0, "temp_c": 38}, {"day": 1, "temp_c": 38.5}, {"day": 2}])
    assert ["round_fever" in f for f in a.days.sort(DAY)["flags"].to_list()] == [True, False, False]


def test_mixed_number_list_in_rule_file(tmp_path: Path) -> None:
    path = rule_file(tmp_path, 'flags:\n  near_fever: "temp_c in [38, 38.5]"\n')
    engine = Engine(read_rules([path]))
    a = assess_with(engine, [{"day": 0, "temp_c": 38}, {"day": 1, "temp_c": 38.5}, {"day": 2, "temp_c": 37}])
    assert ["near_fever" in f for f in a.days.sort(DAY)["flags"].to_list()] == [True, True, False]


# --- list parameters ---------------------------------------------------------------


LIST_RULES = """\
id: devices
title: T
version: "1"
citation: c
parameters:
  grade3_devices:
    value: [high_flow_nasal_cannula, facemask]
    citation: "which devices count as grade 3 is a centre's choice"
  cutoffs:
    value: [38, 39.5]
    citation: numbers of one kind, whole or not
flags:
  strong_oxygen: "o2_device in grade3_devices"
  other_oxygen: "o2_device not in grade3_devices"
  at_cutoff: "temp_c in cutoffs"
"""


def test_a_list_parameter_is_the_options_after_in(tmp_path: Path) -> None:
    from carscore.assess import assess_intake, load_engine
    from carscore.intake import read_text
    from carscore.report import day_rows

    (tmp_path / "devices.yaml").write_text(LIST_RULES, encoding="utf-8")
    engine = load_engine([tmp_path / "devices.yaml"], builtins=False)
    result = assess_intake(
        read_text("patient_id,day,o2_device,temp_c\nA,1,facemask,38\nA,2,nasal_cannula,39.5\nA,3,,37\n"), engine
    )
    flags = [d["flags"] for d in next(iter(day_rows(result).values()))]
    assert flags == [["strong_oxygen", "at_cutoff"], ["other_oxygen", "at_cutoff"], []]


@pytest.mark.parametrize(
    "value, condition, words",
    [
        ("[facemask, 3]", "o2_device in devs", "one kind"),
        ("[]", "o2_device in devs", "one kind"),
        ("[facemaks]", "o2_device in devs", "'facemaks' is not one of the values"),
        ("[facemask]", "temp_c > devs", "needs a number, but this is a list"),
    ],
)
def test_list_parameters_are_checked(tmp_path: Path, value: str, condition: str, words: str) -> None:
    from carscore.engine import Engine

    path = tmp_path / "bad.yaml"
    path.write_text(
        f'id: bad\ntitle: T\nversion: "1"\ncitation: c\nparameters:\n  devs:\n    value: {value}\n    citation: x\n'
        f'flags:\n  f: "{condition}"\n',
        encoding="utf-8",
    )
    with pytest.raises(RuleErrors) as info:
        Engine(read_rules([path]))
    assert words in str(info.value)


# --- another rule set's definitions by qualified name -------------------------------------


QUALIFIED = """\
id: other_crs
title: A second CRS system reusing ASTCT's hypoxia
version: "1"
citation: c
let:
  any_oxygen: "astct_crs.hypoxia"
decisions:
  - outputs: [crs_grade_other]
    reason: crs_other
    cases:
      - when: "not recorded(astct_crs.hypoxia_tier)"
        then: null
      - when: "any_oxygen and astct_crs.hypoxia_tier >= 2"
        then: 3
        reason: "high-flow by ASTCT's tier {astct_crs.hypoxia_tier} (fever from {astct_crs.fever_temp_c})"
      - when: any_oxygen
        then: 2
      - then: 0
"""


def test_a_rule_set_reads_another_rule_sets_definitions_by_qualified_name(tmp_path: Path) -> None:
    from carscore.assess import assess_intake, load_engine
    from carscore.intake import read_text
    from carscore.report import day_rows

    (tmp_path / "other.yaml").write_text(QUALIFIED, encoding="utf-8")
    engine = load_engine([tmp_path / "other.yaml"])
    result = assess_intake(
        read_text("patient_id,day,o2_device,o2_flow_lpm\nA,1,nasal_cannula,2\nA,2,facemask,\nA,3,none,\n"), engine
    )
    days = next(iter(day_rows(result).values()))
    assert [d["crs_grade_other"] for d in days] == [2, 3, 0]
    assert days[1]["reasons"]["crs_other"] == "high-flow by ASTCT's tier 2 (fever from 38.0)"


@pytest.mark.parametrize(
    "condition, words",
    [
        ("nope.x > 1", "no rule set 'nope' in use"),
        ("astct_crs.nothing", "is not a parameter, row value or let of rule set 'astct_crs'"),
        ("astct_crs.counted", "row value without 'combine'"),
    ],
)
def test_qualified_names_that_name_nothing_are_refused(tmp_path: Path, condition: str, words: str) -> None:
    from carscore.assess import load_engine

    (tmp_path / "bad.yaml").write_text(
        f'id: bad\ntitle: T\nversion: "1"\ncitation: c\nflags:\n  f: "{condition}"\n', encoding="utf-8"
    )
    with pytest.raises(RuleErrors) as info:
        load_engine([tmp_path / "bad.yaml"])
    assert words in str(info.value) and "bad.yaml:6:" in str(info.value)
