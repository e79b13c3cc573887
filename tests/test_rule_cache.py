"""Rule files read once (carscore.yamlcache): what is read back from the
cache is what the safe loader gives, value for value and position for
position, and the cache is used only when it can be trusted."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rule_file_safety import MULTILINE, write

from carscore.errors import RuleError, RuleErrors
from carscore.ruleset import read_rules
from carscore.yamlpos import Origin
from carscore.yamlsafe import LDict, LList, LStr, load_yaml

ROOT = Path(__file__).resolve().parent.parent
YAML_FILES = sorted(
    [*ROOT.glob("rules/*.yaml"), *ROOT.glob("tests/cases/*.yaml"), *ROOT.glob("carscore/**/*.yaml")],
    key=str,
)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CARSCORE_CACHE_DIR", str(folder))
    return folder


def fresh(text: str, file: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as m:
        m.setenv("CARSCORE_CACHE_DIR", "off")
        return load_yaml(text, file)


def same(a: Any, b: Any, where: str = "") -> None:
    """Equal values of equal types, with equal positions all the way down."""
    assert type(a) is type(b), where
    if isinstance(a, (LStr, LDict, LList)):
        assert (a.file, a.line, a.col) == (b.file, b.line, b.col), where
    if isinstance(a, LStr):
        assert str(a) == str(b) and a.quote == b.quote, where
        assert isinstance(a.origin, Origin) and isinstance(b.origin, Origin), where
        assert (a.origin.start, a.origin.end, a.origin.style) == (b.origin.start, b.origin.end, b.origin.style), where
        assert a.origin.source.text == b.origin.source.text, where
    elif isinstance(a, LDict):
        assert list(a) == list(b) and a.key_at == b.key_at, where
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            same(ka, kb, f"{where}/{ka} (key)")
            same(va, vb, f"{where}/{ka}")
    elif isinstance(a, LList):
        assert len(a) == len(b), where
        for i, (va, vb) in enumerate(zip(a, b)):
            same(va, vb, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), where


def kept_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_of_the_project_reads_back_the_same(path: Path, cache: Path, monkeypatch) -> None:
    text = path.read_text(encoding="utf-8")
    expected = fresh(text, str(path), monkeypatch)
    first = load_yaml(text, str(path))
    assert len(kept_files(cache)) == 1
    again = load_yaml(text, "elsewhere.yaml")  # the same text under another name
    same(expected, first)
    assert again.file == "elsewhere.yaml"
    same(fresh(text, "elsewhere.yaml", monkeypatch), again)


def test_a_kept_value_is_really_what_is_read(cache: Path, monkeypatch) -> None:
    """The second read comes from the kept file (changing it shows through),
    so the test above compares the cache and not two fresh reads."""
    text = "a: 1\nb: [x, 'y']\n"
    load_yaml(text, "f.yaml")
    (kept,) = kept_files(cache)
    doc = json.loads(kept.read_text(encoding="utf-8"))
    doc["value"][3][1] = 2
    kept.write_text(json.dumps(doc), encoding="utf-8")
    assert load_yaml(text, "f.yaml")["a"] == 2


@pytest.mark.parametrize("body", MULTILINE.values(), ids=MULTILINE.keys())
def test_errors_inside_conditions_keep_their_positions(tmp_path: Path, cache: Path, body: str) -> None:
    path = write(tmp_path, body)
    errors = []
    for _ in range(2):  # read, then read back
        with pytest.raises(RuleErrors) as info:
            read_rules([path])
        errors.append([(e.message, e.file, e.line, e.col) for e in info.value.errors])
    assert len(kept_files(cache)) == 1
    assert errors[0] == errors[1]


@pytest.mark.parametrize(
    "text",
    ["a: &x 1\nb: *x\n", "a: 1\na: 2\n", "a: !!python/object:os.system x\n", "a: 010\n", "a: [1\n", "--- 1\n--- 2\n"],
)
def test_what_is_refused_is_never_kept(text: str, cache: Path) -> None:
    for _ in range(2):
        with pytest.raises(RuleError):
            load_yaml(text, "bad.yaml")
    assert kept_files(cache) == []


def test_changed_text_is_read_afresh(cache: Path) -> None:
    assert load_yaml("limit: 38\n", "f.yaml") == {"limit": 38}
    assert load_yaml("limit: 39\n", "f.yaml") == {"limit": 39}
    assert len(kept_files(cache)) == 2


@pytest.mark.parametrize(
    "damage",
    [
        "",
        "{",
        "[]",
        '{"key": "other", "value": 1}',
        '{"key": "K", "value": ["s", "x"]}',
        '{"key": "K", "value": ["q", 1, 1, []]}',
    ],
)
def test_a_damaged_kept_file_is_read_afresh_and_rewritten(damage: str, cache: Path, monkeypatch) -> None:
    text = "a: 1\nb: [x, 'y']\n"
    load_yaml(text, "f.yaml")
    (kept,) = kept_files(cache)
    kept.write_text(damage.replace("K", kept.stem), encoding="utf-8")
    same(fresh(text, "f.yaml", monkeypatch), load_yaml(text, "f.yaml"))
    assert json.loads(kept.read_text(encoding="utf-8"))["key"] == kept.stem


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="folder permissions are POSIX")
def test_a_folder_others_can_write_to_is_not_used(cache: Path) -> None:
    cache.mkdir()
    cache.chmod(0o777)
    assert load_yaml("a: 1\n", "f.yaml") == {"a": 1}
    assert kept_files(cache) == []
    cache.chmod(0o700)
    load_yaml("a: 1\n", "f.yaml")
    assert len(kept_files(cache)) == 1
    # a kept file planted while the folder was open to others is not read either
    (kept,) = kept_files(cache)
    doc = json.loads(kept.read_text(encoding="utf-8"))
    doc["value"][3][1] = 2
    kept.write_text(json.dumps(doc), encoding="utf-8")
    cache.chmod(0o770)
    assert load_yaml("a: 1\n", "f.yaml") == {"a": 1}


def test_the_folder_is_made_for_the_user_alone(cache: Path) -> None:
    load_yaml("a: 1\n", "f.yaml")
    if hasattr(os, "getuid"):
        assert stat.S_IMODE(cache.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize("setting", ["off", ""])
def test_the_cache_can_be_turned_off(setting: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CARSCORE_CACHE_DIR", setting)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_yaml("a: 1\n", "f.yaml") == {"a": 1}
    assert not any(tmp_path.rglob("*.json"))


def test_an_unwritable_folder_only_costs_time(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("CARSCORE_CACHE_DIR", str(blocker / "cache"))
    assert load_yaml("a: 1\n", "f.yaml") == {"a": 1}


# --- random documents: every form of scalar and nesting reads back the same ------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=30),
    st.sampled_from(["temp_c > 38 and\nsbp < 90", "a 'quoted' word", 'say "x"', "x: y", "- item", "# no", "é ≥ 39 °C"]),
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    document=st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), _documents, min_size=1, max_size=4),
    style=st.sampled_from([None, "'", '"', "|", ">"]),
    flow=st.booleans(),
)
def test_random_documents_read_back_the_same(document, style, flow, tmp_path_factory, monkeypatch) -> None:
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("CARSCORE_CACHE_DIR", str(folder))
    text = yaml.safe_dump(document, default_style=style, default_flow_style=flow, allow_unicode=True, sort_keys=False)
    try:
        expected = fresh(text, "r.yaml", monkeypatch)
    except Exception:
        return  # refused (a number written as text, say): nothing to keep
    first = load_yaml(text, "r.yaml")
    second = load_yaml(text, "r.yaml")
    same(expected, first)
    same(expected, second)
    assert len(kept_files(folder)) == 1
