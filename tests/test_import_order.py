"""The order of a source's records never changes what is imported (contract
§4): every preset's fixture, its records shuffled within each file, gives the
same rows (their sources then cite other lines, so they are set aside)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carscore.importer import import_sources
from carscore.importer.mapping import preset_names

FIXTURES = Path(__file__).parent / "fixtures" / "import"
PRESETS = [p for p in ("clif", "fhir", "sdtm", "epic", "redcap") if p in preset_names() and (FIXTURES / p).is_dir()]


def shuffled_copy(source: Path, target: Path, rng: random.Random) -> None:
    """Every data file with its records in another order (CSV: the header stays first)."""
    shutil.copytree(source, target)
    for path in target.iterdir():
        lines = path.read_bytes().splitlines(keepends=True)
        if path.suffix == ".csv" and b'"' not in b"".join(lines):  # quoted cells may span lines
            head, body = lines[:1], lines[1:]
        elif path.suffix == ".ndjson":
            head, body = [], lines
        else:
            continue
        body = [line if line.endswith(b"\n") else line + b"\n" for line in body]
        rng.shuffle(body)
        path.write_bytes(b"".join(head + body))


def imported_rows(folder: Path, preset: str) -> list[tuple]:
    imported = import_sources([str(folder)], preset, str(FIXTURES / "infusions.csv"), "America/Chicago")
    rows = imported.rows.drop("source")
    return sorted(tuple("" if v is None else str(v) for v in row) for row in rows.iter_rows())


@pytest.mark.parametrize("preset", PRESETS)
@settings(max_examples=3, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_shuffling_source_records_never_changes_the_rows(
    preset: str, seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    target = tmp_path_factory.mktemp(preset) / preset
    shuffled_copy(FIXTURES / preset, target, random.Random(seed))
    assert imported_rows(target, preset) == imported_rows(FIXTURES / preset, preset)
