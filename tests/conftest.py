from __future__ import annotations

import atexit
import csv
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from carscore.assess import assess_intake, load_engine
from carscore.casefile import cell, rows_to_csv  # noqa: F401 - shared with the tests
from carscore.engine import Engine
from carscore.intake import read_text

ROOT = Path(__file__).resolve().parent.parent

# Rule files are read through the cache of located YAML (carscore.yamlcache),
# as on users' machines, but into a folder of this run's own, which every
# command the tests start inherits.
_CACHE = tempfile.mkdtemp(prefix="carscore-test-cache-")
os.environ["CARSCORE_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)


@lru_cache(maxsize=64)
def _engine(overrides_key: tuple) -> Engine:
    overrides = {rs: dict(params) for rs, params in overrides_key}
    return load_engine(overrides=overrides or None)


def engine_for(overrides: dict[str, dict[str, Any]] | None = None) -> Engine:
    key = tuple(sorted((rs, tuple(sorted(p.items()))) for rs, p in (overrides or {}).items()))
    return _engine(key)


def assess_rows(rows: list[dict[str, Any]], overrides: dict | None = None):
    intake = read_text(rows_to_csv(rows), "case.csv")
    return assess_intake(intake, engine_for(overrides))


@pytest.fixture
def assess():
    return assess_rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows (mappings of column to value) as a CSV file, columns in order of first use."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r.get(c) is None else str(r[c]) for c in columns])
    return path


def locate(path: Path, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based line and column of the nth occurrence of needle in the file."""
    seen = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        start = 0
        while (i := line.find(needle, start)) >= 0:
            if seen == nth:
                return number, i + 1
            seen += 1
            start = i + 1
    raise AssertionError(f"{needle!r} not found in {path}")


# a grading system of its own (system: demo), reading ASTCT's hypoxia tier by qualified name
DEMO_SYSTEM = """\
id: demo_crs
title: A demonstration CRS system
system: demo
version: "1"
citation: c
decisions:
  - outputs: [crs_grade_demo]
    reason: crs_demo
    cases:
      - when: "astct_crs.hypoxia_tier >= 1"
        then: 3
        reason: "any oxygen"
      - when: "temp_c >= 38"
        then: 1
      - then: 0
outputs:
  crs_grade_demo: {kind: grade, label: Demo, summaries: "crs_*_demo", family: crs}
"""
