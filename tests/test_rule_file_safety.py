"""Hostile or broken rule files: every problem is one sentence at
``file:line:col`` (a RuleError), never a Python error, a RecursionError or
a memory blow-up, and nothing in a rule file is silently misread.

Covers: YAML anchors and aliases (billion laughs, recursive aliases), YAML
nesting depth, the length and nesting of conditions, numbers (size,
non-finite values, digits other than 0-9, YAML 1.1 surprises such as octal
010 or base-60 1:30), and the line and column of an error inside a condition
written over several lines (folded, literal, plain and quoted scalars).

Most tests read rule files with ``read_rules`` (YAML and condition syntax
only, no compilation), so that they stay fast and independent of the engine.
"""

from __future__ import annotations

import re
import textwrap
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import locate

from carscore.errors import RuleError, RuleErrors
from carscore.expr import (
    MAX_CONDITION_CHARS,
    MAX_NESTING,
    MAX_TREE_DEPTH,
    Binary,
    ExprSyntaxError,
    ListOf,
    Literal,
    Name,
    Node,
    Unary,
    names_in,
    parse,
)
from carscore.numbers import NumberError, read_number
from carscore.ruleset import read_rules
from carscore.yamlsafe import MAX_DEPTH, MAX_FILE_CHARS, LDict, load_yaml

HEADER = 'id: safety\ntitle: Hostile and broken rule files\nversion: "1"\ncitation: "none"\n'


# --- helpers -----------------------------------------------------------------------


def write(folder: Path, body: str, header: bool = True, name: str = "rules.yaml") -> Path:
    """A rule file: the four header lines (unless header is False), then body."""
    path = folder / name
    path.write_text((HEADER if header else "") + textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def refused(path: Path) -> RuleError:
    """Read the rule file: it must be refused with exactly one plain sentence."""
    with pytest.raises(RuleErrors) as info:
        read_rules([path])
    errors = info.value.errors
    assert len(errors) == 1, [str(e) for e in errors]
    err = errors[0]
    assert isinstance(err, RuleError)
    assert err.file == str(path)
    assert err.line >= 1 and err.col >= 1, str(err)
    assert str(err) == f"{path}:{err.line}:{err.col}: {err.message}"
    assert err.message and "\n" not in err.message and "Traceback" not in err.message
    return err


def assert_refused_at(path: Path, needle: str, *words: str, nth: int = 0) -> RuleError:
    err = refused(path)
    assert (err.line, err.col) == locate(path, needle, nth), f"expected {locate(path, needle, nth)}, got {err}"
    for word in words:
        assert word in err.message, err.message
    return err


# a guard against hanging (an alias bomb expanded, a recursion gone exponential),
# never a speed target: speed is measured by bench/benchmark.py
HANG = 60.0


@contextmanager
def bounded(seconds: float, megabytes: float | None = None) -> Iterator[None]:
    """The block must finish rather than hang and, when megabytes is given,
    allocate little at its peak (tracemalloc slows Python down: only where
    memory is the point)."""
    if megabytes is not None:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] if megabytes is not None else 0
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    if megabytes is not None:
        assert peak < megabytes * 2**20, f"peak {peak / 2**20:.1f} MB"


def tree_depth(node: Node) -> int:
    """Depth of a parsed condition, walked without recursion."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        n, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(n, Binary):
            stack += [(n.left, depth + 1), (n.right, depth + 1)]
        elif isinstance(n, Unary):
            stack.append((n.operand, depth + 1))
    return deepest


# --- 1. anchors and aliases ----------------------------------------------------------


def billion_laughs(levels: int = 9) -> str:
    """The classic: each level lists the one before nine times (9**9 leaves)."""
    lines = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_fails_fast_at_the_first_alias(tmp_path: Path) -> None:
    path = write(tmp_path, "description:\n" + textwrap.indent(billion_laughs(), "  "))
    with bounded(seconds=HANG, megabytes=10):
        err = refused(path)
    assert (err.line, err.col) == locate(path, "*lol0"), str(err)
    assert "aliases" in err.message and "not allowed" in err.message


def test_billion_laughs_as_the_whole_file(tmp_path: Path) -> None:
    path = write(tmp_path, billion_laughs(), header=False)
    with bounded(seconds=HANG, megabytes=10):
        assert_refused_at(path, "*lol0", "aliases")


@pytest.mark.parametrize(
    "body, needle",
    [
        ("description: &loop [*loop]\n", "*loop"),
        ("parameters: &p\n  p:\n    value: 1\n    citation: *p\n", "*p"),
        ("flags: &f {x: *f}\n", "*f"),
    ],
    ids=["list-holds-itself", "mapping-holds-itself", "flow-mapping"],
)
def test_recursive_alias_is_refused(tmp_path: Path, body: str, needle: str) -> None:
    with bounded(seconds=HANG):
        assert_refused_at(write(tmp_path, body), needle, "aliases")


def test_anchor_alone_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'flags:\n  hot: &hot "temp_c > 38"\n')
    assert_refused_at(path, "&hot", "anchors", "not allowed")


def test_alias_used_as_a_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "flags:\n  hot: &k temp_c > 38\n  *k : temp_c > 39\n")
    assert_refused_at(path, "*k", "aliases")


def test_merge_key_is_named_rather_than_its_anchor(tmp_path: Path) -> None:
    """'<<: *base' is refused as a merge key (the more telling sentence),
    even though the anchor it refers to comes first in the file."""
    body = """
        parameters:
          base: &base
            value: 1
            citation: c
          other:
            <<: *base
        """
    assert_refused_at(write(tmp_path, body), "<<", "merge")


@pytest.mark.parametrize(
    "body, needle, words",
    [
        ("citation2: !!python/object/apply:os.system [true]\n", "!!python", ["not allowed"]),
        ("flags: !!set {a, b}\n", "!!set", ["not allowed"]),
        ("flags:\n  x: {a: 1, a: 2}\n", "a: 2", ["duplicate key 'a'"]),
    ],
    ids=["python-tag", "set-tag", "duplicate-key-in-flow-mapping"],
)
def test_tags_and_duplicate_keys_stay_refused(tmp_path: Path, body: str, needle: str, words: list[str]) -> None:
    assert_refused_at(write(tmp_path, body), needle, *words)


def test_a_second_document_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'flags:\n  hot: "temp_c > 38"\n---\nflags: {}\n')
    assert_refused_at(path, "---", "one YAML document")


# --- 2. nesting depth of the YAML ----------------------------------------------------


@pytest.mark.parametrize(
    "opener, closer, separator",
    [("[", "]", ""), ("{a: ", "}", ""), ("[", "]", "\n"), ("[{a: ", "}]", "\n")],
    ids=["flow-lists", "flow-mappings", "one-per-line", "lists-of-mappings"],
)
def test_ten_thousand_deep_flow_nesting_is_refused(tmp_path: Path, opener: str, closer: str, separator: str) -> None:
    depth = 10_000
    body = "description: " + (opener + separator) * depth + "x" + closer * depth + "\n"
    path = write(tmp_path, body)
    # PyYAML's scanner looks up to 1024 characters ahead on a line: the cost
    # is bounded whatever the length, and the builder stops at MAX_DEPTH
    with bounded(seconds=HANG):
        err = refused(path)
    assert f"more than {MAX_DEPTH} levels" in err.message
    # the opener that goes one level too deep (the root mapping is level 1)
    n = MAX_DEPTH - 1  # collections opened before it inside the root
    per = opener.count("[") + opener.count("{")  # collections each repetition opens
    offset = (len(opener) + len(separator)) * (n // per) + (1 if n % per else 0)
    text = path.read_text(encoding="utf-8")
    index = text.index("description: ") + len("description: ") + offset
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    assert (err.line, err.col) == (line, col), str(err)


def test_deep_block_nesting_is_refused(tmp_path: Path) -> None:
    """Indented block lists, 200 levels deep."""
    body = "description:\n" + "".join("  " * i + "-\n" for i in range(1, 201))
    path = write(tmp_path, body)
    err = refused(path)
    assert f"more than {MAX_DEPTH} levels" in err.message
    # the root mapping is level 1, so the list opened on body line MAX_DEPTH is one too many
    assert (err.line, err.col) == (HEADER.count("\n") + 1 + MAX_DEPTH, 2 * MAX_DEPTH + 1), str(err)


def test_nesting_up_to_the_limit_is_read() -> None:
    inner = MAX_DEPTH - 1  # lists inside the root mapping
    doc = load_yaml("a: " + "[" * inner + "1" + "]" * inner + "\n", "deep.yaml")
    assert isinstance(doc, LDict)
    value, levels = doc["a"], 0
    while isinstance(value, list):
        value, levels = value[0], levels + 1
    assert (levels, value) == (inner, 1)
    with pytest.raises(RuleError, match=f"more than {MAX_DEPTH} levels"):
        load_yaml("a: " + "[" * (inner + 1) + "1" + "]" * (inner + 1) + "\n", "deep.yaml")


# --- other broken YAML: always a position -----------------------------------------------------


def test_control_character_is_reported_at_its_position(tmp_path: Path) -> None:
    path = write(tmp_path, 'flags:\n  hot: "temp_c > 38\x01"\n')
    err = assert_refused_at(path, "\x01", "U+0001", "not valid YAML")
    assert err.message.startswith("not valid YAML")


@pytest.mark.parametrize(
    "escape, shown",
    [("\\e[31m", "U+001B"), ("\\x07", "U+0007"), ("\\uD800", "U+D800"), ("\\u202E", "U+202E")],
    ids=["terminal-escape", "bell", "lone-surrogate", "bidi-override"],
)
def test_escapes_giving_characters_out_of_place_are_refused(tmp_path: Path, escape: str, shown: str) -> None:
    path = write(tmp_path, f'description: "colour {escape} text"\n')
    assert_refused_at(path, '"colour', shown)


def test_escape_beyond_unicode_is_a_yaml_error(tmp_path: Path) -> None:
    """PyYAML itself fails on it with a Python OverflowError."""
    path = write(tmp_path, 'description: "x\\UFFFFFFFF"\n')
    err = refused(path)
    assert err.message.startswith("not valid YAML")
    assert err.line == locate(path, "description")[0]


def test_a_huge_file_is_refused_before_parsing() -> None:
    with bounded(seconds=HANG, megabytes=8):
        with pytest.raises(RuleError, match="too big for a rule file"):
            load_yaml("#" * (MAX_FILE_CHARS + 1), "huge.yaml")


# --- 3. length and nesting of conditions -----------------------------------------------


def test_long_flat_or_chain_parses_as_a_shallow_tree(tmp_path: Path) -> None:
    terms = [f"temp_c > {i}" for i in range(600)]
    path = write(tmp_path, "flags:\n  many: " + " or ".join(terms) + "\n")
    with bounded(seconds=HANG):
        (rs,) = read_rules([path])
    node = rs.flags["many"].when.node
    assert tree_depth(node) <= 12
    assert names_in(node) == {"temp_c"}
    # every term is there, left to right, each 'or' keeping its own position
    leaves: list[int] = []
    operators: list[int] = []
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Binary) and n.op == "or":
            operators.append(n.pos)
            stack += [n.right, n.left]
        else:
            assert isinstance(n, Binary) and isinstance(n.right, Literal) and isinstance(n.right.value, int)
            leaves.append(n.right.value)
    assert leaves == list(range(600))
    text = " or ".join(terms)
    assert sorted(operators) == [m.start() + 1 for m in re.finditer(" or ", text)]


def test_long_and_chain_with_names_parses() -> None:
    text = " and ".join(f"x{i}" for i in range(1000))
    assert len(text) <= MAX_CONDITION_CHARS
    node = parse(text)
    assert tree_depth(node) <= 11
    assert names_in(node) == {f"x{i}" for i in range(1000)}


def test_three_terms_keep_the_usual_left_nesting() -> None:
    node = parse("a or b or c")
    assert isinstance(node, Binary) and node.pos == 7
    assert isinstance(node.left, Binary) and node.left.pos == 2


def test_condition_longer_than_the_limit_is_refused(tmp_path: Path) -> None:
    text = " or ".join(f"temp_c > {i}" for i in range(700))
    assert len(text) > MAX_CONDITION_CHARS
    path = write(tmp_path, "flags:\n  many: " + text + "\n")
    with bounded(seconds=HANG):
        assert_refused_at(path, "temp_c > 0", "condition too long", f"{MAX_CONDITION_CHARS:,}")


# (repeated prefix, its closing suffix, the innermost value, levels each prefix adds)
NESTINGS = [
    ("(", ")", "x", 1),
    ("not ", "", "x", 1),
    ("-", "", "1", 1),
    ("- ", "", "1", 1),
    ("[", "]", "1", 1),
    ("f(", ")", "1", 1),
    ("x in [", "]", "1", 1),
    ("not -(", ")", "1", 3),
]


@pytest.mark.parametrize("prefix, suffix, core, levels", NESTINGS, ids=[n[0].strip() for n in NESTINGS])
def test_deep_nesting_in_a_condition_is_refused(prefix: str, suffix: str, core: str, levels: int) -> None:
    """Just over the limit, and as deep as fits in the length limit."""
    for depth in (MAX_NESTING + 1, (MAX_CONDITION_CHARS - len(core)) // (len(prefix) + len(suffix))):
        text = prefix * depth + core + suffix * depth
        assert len(text) <= MAX_CONDITION_CHARS
        with pytest.raises(ExprSyntaxError) as info:
            parse(text)
        assert f"nested too deeply (more than {MAX_NESTING} levels)" in info.value.message
        # pointed at the prefix that goes one level too far, or just after it
        too_far = -(-(MAX_NESTING + 1) // levels)  # the how-many-th prefix
        assert (too_far - 1) * len(prefix) <= info.value.offset <= too_far * len(prefix), info.value.offset


@pytest.mark.parametrize(
    "text",
    ["(" * 10_000 + "x" + ")" * 10_000, "not " * 10_000 + "x", "-" * 10_000 + "1"],
    ids=["parentheses", "not", "minus"],
)
def test_ten_thousand_deep_condition_in_a_rule_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, f"flags:\n  deep: {text}\n")
    err = refused(path)
    assert "condition too long" in err.message or "nested too deeply" in err.message


def test_nesting_up_to_the_limit_parses() -> None:
    assert isinstance(parse("(" * MAX_NESTING + "x" + ")" * MAX_NESTING), Name)
    assert isinstance(parse("not " * MAX_NESTING + "x"), Unary)
    assert isinstance(parse("-" * MAX_NESTING + "1"), Unary)
    assert isinstance(parse("[" * MAX_NESTING + "1" + "]" * MAX_NESTING), ListOf)


def test_a_sum_too_long_to_walk_is_refused() -> None:
    """A flat sum is a tree as deep as it has terms: refused beyond the
    depth every tree walker can take, rather than a RecursionError later."""
    parse(" + ".join(["1"] * (MAX_TREE_DEPTH // 2)))
    with pytest.raises(ExprSyntaxError, match="nested too deeply"):
        parse(" + ".join(["1"] * 1000))


# --- 4. numbers ----------------------------------------------------------------------------------

# (YAML value, words the sentence must hold)
BAD_VALUES = [
    ("9" * 5000, "too long"),
    ("1" + "0" * 30, "too large"),
    ("9223372036854775808", "too large"),
    ("1.0e+309", "too large"),
    ("-1.0e+309", "too large"),
    ("1e309", "too large"),
    ("1e-400", "too small"),
    (".nan", "not a finite number"),
    (".NaN", "not a finite number"),
    (".inf", "not a finite number"),
    ("-.inf", "not a finite number"),
    ("nan", "not a finite number"),
    ("inf", "not a finite number"),
    ("-Infinity", "not a finite number"),
    ("٣٨", "digits other than 0-9"),
    ("'٣٨'", "digits other than 0-9"),
    ("３８", "digits other than 0-9"),
    ("٣٨.٥", "digits other than 0-9"),
    ('!!int "٣٨"', "digits other than 0-9"),
    ('!!float "nan"', "not a finite number"),
    ("010", "starts with 0"),
    ("0x1F", "not a decimal number"),
    ("0b101", "not a decimal number"),
    ("1:30", "base-60"),
    ("1_000", "without '_'"),
    ("1_0.5e3", "without '_'"),
    ("2024-01-01", "date"),
]


@pytest.mark.parametrize("value, words", BAD_VALUES, ids=[v[:12] for v, _ in BAD_VALUES])
def test_unreadable_number_as_a_yaml_value_is_refused(tmp_path: Path, value: str, words: str) -> None:
    path = write(tmp_path, f"parameters:\n  limit:\n    value: {value}\n    citation: c\n")
    with bounded(seconds=HANG):
        assert_refused_at(path, value, words)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("38", 38),
        ("-38.5", -38.5),
        ("1e3", 1000.0),
        ("1.5e3", 1500.0),
        (".5", 0.5),
        ("0", 0),
        ("0.25", 0.25),
        ("9223372036854775807", 2**63 - 1),
        ("'010'", "010"),
        ('"inf"', "inf"),
        ("'٣٨ days'", "٣٨ days"),
    ],
)
def test_numbers_and_text_that_are_read(tmp_path: Path, value: str, expected: object) -> None:
    path = write(tmp_path, f"parameters:\n  limit:\n    value: {value}\n    citation: c\n")
    (rs,) = read_rules([path])
    got = rs.parameters["limit"].value
    assert got == expected
    assert isinstance(got, str) if isinstance(expected, str) else type(got) is type(expected)


# (condition, the token the error must point at, words of the sentence)
BAD_CONDITIONS = [
    ("temp_c > " + "9" * 5000, "9", "too long"),
    ("temp_c > 99999999999999999999", "9", "too large"),
    ("temp_c > 1e309", "1e309", "too large"),
    ("temp_c > 1e-400", "1e-400", "too small"),
    ("temp_c > nan", "nan", "not a finite number"),
    ("temp_c < inf", "inf", "not a finite number"),
    ("temp_c < Infinity", "Infinity", "not a finite number"),
    ("temp_c > ٣٨", "٣", "digit other than 0-9"),
    ("temp_c > 3٨", "٨", "digit other than 0-9"),
    ("temp_c > ３８", "３", "digit other than 0-9"),
    ("temp_c > 038", "038", "starts with 0"),
]


@pytest.mark.parametrize("condition, token, words", BAD_CONDITIONS, ids=[c[9:21] for c, _, _ in BAD_CONDITIONS])
def test_unreadable_number_in_a_condition_is_refused(tmp_path: Path, condition: str, token: str, words: str) -> None:
    path = write(tmp_path, f'flags:\n  hot: "{condition}"\n')
    assert_refused_at(path, token, words)


def test_nan_and_inf_cannot_be_names(tmp_path: Path) -> None:
    """Conditions refuse them (they read as numbers that are not finite), so
    a rule file cannot define them either."""
    path = write(tmp_path, "let:\n  inf: temp_c + 1\nflags:\n  f: temp_c > 1\n")
    assert_refused_at(path, "inf:", "cannot be a name")


def test_whole_numbers_in_conditions_are_exact() -> None:
    node = parse("x == 9007199254740993")  # 2**53 + 1: a float would make it ...992
    assert isinstance(node, Binary) and isinstance(node.right, Literal)
    assert node.right.value == 2**53 + 1 and type(node.right.value) is int
    assert read_number("2.") == 2.0 and read_number("1E3") == 1000.0 and read_number("-0") == 0
    with pytest.raises(NumberError):
        read_number("1.5e")


# --- 5. positions inside conditions written over several lines ---------------------------------

# Each body has one syntax error: a single '=' where '==' was meant.
MULTILINE = {
    "folded-error-on-2nd-line": """
        flags:
          hot: >-
            temp_c > 38 and
            sbp = 90 and
            hr > 100
        """,
    "folded-error-on-3rd-line": """
        flags:
          hot: >-
            temp_c > 38 and
            hr > 100 and
            sbp = 90
        """,
    # the usual layout: the scalar is followed by a key of its mapping
    "folded-then-next-key": """
        decisions:
          - outputs: [g]
            cases:
              - when: >-
                  temp_c > 38
                  and hr > 100
                  and sbp = 90
                then: 1
              - then: 0
        """,
    "folded-trailing-spaces": "flags:\n  hot: >-\n    temp_c > 38 and   \n    hr > 100 and  \n    sbp = 90\n",
    "folded-blank-lines": "flags:\n  hot: >-\n    temp_c > 38 and\n\n    hr > 100 and\n\n\n    sbp = 90\n",
    "folded-more-indented": "flags:\n  hot: >-\n    temp_c > 38 and\n      hr > 100 and\n    sbp = 90\n  cold: temp_c < 35\n",
    "folded-header-comment": "flags:\n  hot: >- # fever\n    temp_c > 38 and\n    sbp = 90\n",
    "folded-indentation-indicator": "flags:\n  hot: >2-\n     temp_c > 38 and\n     sbp = 90\n",
    "folded-leading-blank": "flags:\n  hot: >-\n\n    temp_c > 38 and\n    sbp = 90\n",
    "literal-blank-lines": "flags:\n  hot: |\n    temp_c > 38 and\n\n\n    sbp = 90\n  cold: temp_c < 35\n",
    "plain-three-lines": "flags:\n  hot: temp_c > 38 and\n    hr > 100 and\n    sbp = 90\n",
    "single-quoted-escapes": "flags:\n  hot: 'o2_device == ''none'' and\n    sbp = 90'\n",
    "double-quoted-escapes": 'flags:\n  hot: "o2_device == \\"none\\" and sbp = 90"\n',
    "double-quoted-escaped-break": 'flags:\n  hot: "temp_c > 38 and \\\n    sbp = 90"\n',
    "double-quoted-tab-escape": 'flags:\n  hot: "temp_c > 38\\tand sbp = 90"\n',
    "flow-mapping-plain": "decisions:\n  - outputs: [g]\n    cases:\n      - {when: temp_c > 38 and\n          sbp = 90, then: 1}\n      - then: 0\n",
    "reason-folded-3rd-line": """
        decisions:
          - outputs: [g]
            cases:
              - when: temp_c > 38
                then: 1
                reason: >-
                  fever of {temp_c}
                  with a pulse of {hr}
                  and {sbp = 90}
              - then: 0
        """,
}


@pytest.mark.parametrize("body", MULTILINE.values(), ids=MULTILINE.keys())
def test_error_inside_a_multiline_condition_points_at_its_token(tmp_path: Path, body: str) -> None:
    path = write(tmp_path, body)
    err = assert_refused_at(path, "= 90", "'=='")
    assert err.message.startswith("unexpected character '='")


def test_end_of_a_multiline_condition_is_just_after_its_last_character(tmp_path: Path) -> None:
    path = write(tmp_path, "flags:\n  hot: >-\n    temp_c > 38 and\n    sbp <\n  cold: temp_c < 35\n")
    err = refused(path)
    line, col = locate(path, "sbp <")
    assert (err.line, err.col) == (line, col + len("sbp <")), str(err)
    assert "end of the condition" in err.message


def test_compile_error_in_a_folded_condition_points_at_the_name(tmp_path: Path) -> None:
    """The same positions serve errors found when compiling (here an unknown name)."""
    from carscore.engine import Engine

    path = write(
        tmp_path,
        """
        decisions:
          - outputs: [g]
            cases:
              - when: >-
                  temp_c > 38
                  and tempc > 39
                then: 1
              - then: 0
        """,
    )
    with pytest.raises(RuleErrors) as info:
        Engine(read_rules([path]))
    (err,) = [e for e in info.value.errors if "tempc" in e.message]
    assert (err.line, err.col) == locate(path, "tempc"), str(err)


# --- through the command line: exit 2 with the position, never an internal error ----------------


def test_cli_validate_reports_hostile_files_with_exit_2(tmp_path: Path) -> None:
    """One run over several hostile files: each is reported at its position."""
    from typer.testing import CliRunner

    from carscore.cli.app import app

    files = {
        write(tmp_path, billion_laughs(), name="laughs.yaml"): "*lol0",
        write(tmp_path, "description: " + "[\n" * 10_000 + "]" * 10_000 + "\n", name="deep.yaml"): None,
        write(tmp_path, "parameters:\n  p:\n    value: " + "9" * 5000 + "\n    citation: c\n", name="number.yaml"): "9999",
        write(tmp_path, 'flags:\n  hot: "' + "(" * 4000 + "temp_c > 38" + ")" * 4000 + '"\n', name="cond.yaml"): "(((",
    }
    args = ["rules", "validate", *map(str, files)]
    result = CliRunner().invoke(app, args, env={"NO_COLOR": "1", "COLUMNS": "200"})
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    assert "Traceback" not in output and "internal error" not in output
    for path, needle in files.items():
        if needle is None:
            assert f"{path}:" in output, output
        else:
            line, col = locate(path, needle)
            if needle == "(((":
                col += MAX_NESTING  # the '(' one level too deep
            assert f"{path}:{line}:{col}: " in output, output


# --- rule-set level: version, parameter overrides, chains of definitions ---------------


def test_a_numeric_version_is_refused_as_it_would_lose_digits(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text('id: v\ntitle: T\nversion: 1.10\ncitation: c\nflags:\n  f: "temp_c > 1"\n', encoding="utf-8")
    with pytest.raises(RuleErrors) as info:
        read_rules([path])
    assert "v.yaml:3" in str(info.value) and "quotes" in str(info.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**30])
def test_parameter_overrides_must_be_finite(value: float) -> None:
    from carscore.assess import load_engine

    with pytest.raises(RuleErrors) as info:
        load_engine(overrides={"thresholds": {"car_copies_negative_below": value}})
    assert "finite" in str(info.value)


def test_a_long_chain_of_definitions_is_refused_with_a_sentence(tmp_path: Path) -> None:
    from carscore.engine import Engine

    lets = "\n".join(f'  a{i}: "a{i - 1} + 1"' for i in range(1, 1500))
    path = tmp_path / "chain.yaml"
    path.write_text(
        f'id: chain\ntitle: T\nversion: "1"\ncitation: c\nlet:\n  a0: "temp_c + 1"\n{lets}\nflags:\n  big: "a1499 > 0"\n',
        encoding="utf-8",
    )
    with pytest.raises(RuleErrors) as info:
        Engine(read_rules([path]))
    assert "chain of more than" in str(info.value)


def test_a_circle_of_definitions_is_named_briefly(tmp_path: Path) -> None:
    from carscore.engine import Engine

    lets = "\n".join(f'  b{i}: "b{(i + 1) % 1500} + 1"' for i in range(1500))
    path = tmp_path / "circle.yaml"
    path.write_text(f'id: circle\ntitle: T\nversion: "1"\ncitation: c\nlet:\n{lets}\n', encoding="utf-8")
    with pytest.raises(RuleErrors) as info:
        Engine(read_rules([path]))
    message = str(info.value)
    assert "circle" in message and "more) ..." in message and len(message) < 400


def test_two_rule_sets_may_not_share_a_reason_key(tmp_path: Path) -> None:
    from carscore.engine import Engine

    body = 'title: T\nversion: "1"\ncitation: c\ndecisions:\n  - outputs: [{out}]\n    reason: shared\n    cases:\n      - then: 1\n        reason: "r"\n'
    (tmp_path / "a.yaml").write_text("id: a\n" + body.format(out="out_a"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text("id: b\n" + body.format(out="out_b"), encoding="utf-8")
    with pytest.raises(RuleErrors) as info:
        Engine(read_rules([tmp_path]))
    assert "reason key 'shared' is already used by rule set 'a'" in str(info.value)
    assert "b.yaml" in str(info.value)


def test_a_clash_of_flag_names_blames_the_first_owner(tmp_path: Path) -> None:
    from carscore.engine import Engine

    (tmp_path / "a.yaml").write_text(
        'id: a\ntitle: T\nversion: "1"\ncitation: c\nflags:\n  hot: "temp_c > 38"\n', encoding="utf-8"
    )
    (tmp_path / "b.yaml").write_text(
        'id: b\ntitle: T\nversion: "1"\ncitation: c\nflags:\n  hot: "temp_c > 39"\n', encoding="utf-8"
    )
    with pytest.raises(RuleErrors) as info:
        Engine(read_rules([tmp_path]))
    message = str(info.value)
    assert "b.yaml:6" in message and "already defined by rule set 'a'" in message
