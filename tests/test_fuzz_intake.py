"""Mutation fuzz of the intake: the sample files, damaged the ways files get
damaged (bytes flipped, lines cut, duplicated or swapped, quotes, separators
and NUL bytes inserted, encodings changed, the file truncated), must always
give an answer the contract allows: a graded course or a named problem, never
an exception. Seeded and bounded, so every run tries the same mutants."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest
from conftest import engine_for
from typer.testing import CliRunner

from carscore.assess import assess_intake
from carscore.cli.app import app
from carscore.intake import read_sources
from carscore.sources import Source

SAMPLES = sorted((Path(__file__).resolve().parent.parent / "sample_cases").glob("*.csv"))
MUTANTS_PER_SAMPLE = 20
INSERTS = [
    b'"',
    b",",
    b";",
    b"\t",
    b"\x00",
    b"\r",
    b"\n",
    b"\xff",
    b"\xe2\x82",
    b"=cmd|' /C calc'!A0",
    b"[red]",
    b"\x1b[2J",
    b"1e309",
    b"-",
]


def mutate(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    kind = rng.randrange(9)
    if kind == 0 and data:  # flip a byte
        i = rng.randrange(len(data))
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
    if kind == 1:  # insert something troublesome
        i = rng.randrange(len(data) + 1)
        return data[:i] + rng.choice(INSERTS) + data[i:]
    if kind == 2 and len(lines) > 2:  # drop a line (the header too, sometimes)
        del lines[rng.randrange(len(lines))]
        return b"\n".join(lines)
    if kind == 3 and len(lines) > 2:  # duplicate a line
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return b"\n".join(lines)
    if kind == 4 and len(lines) > 3:  # swap two lines
        i, j = rng.sample(range(len(lines)), 2)
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines)
    if kind == 5:  # truncate anywhere
        return data[: rng.randrange(len(data) + 1)]
    if kind == 6:  # another encoding or line end
        text = data.decode("utf-8", "replace")
        return rng.choice([text.encode("utf-16"), text.encode("cp1252", "replace"), data.replace(b"\n", b"\r\n")])
    if kind == 7 and len(lines) > 1:  # cut a cell out of one row
        i = rng.randrange(1, len(lines))
        cells = lines[i].split(b",")
        if len(cells) > 1:
            del cells[rng.randrange(len(cells))]
        lines[i] = b",".join(cells)
        return b"\n".join(lines)
    # change the separator of the whole file
    return data.replace(b",", rng.choice([b";", b"\t", b"|"]))


def _courses(intake) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    return [tuple(r) for r in intake.courses.select("patient_id", "infusion").iter_rows()]


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.stem for s in SAMPLES])
def test_damaged_files_are_graded_or_named_never_raise(sample: Path) -> None:
    rng = random.Random(f"carscore-fuzz-{sample.stem}")
    original = sample.read_bytes()
    engine = engine_for()
    for n in range(MUTANTS_PER_SAMPLE):
        data = original
        for _ in range(rng.randrange(1, 4)):
            data = mutate(data, rng)
        intake = read_sources([Source(sample.name, data)], engine.contract)
        graded = assess_intake(intake, engine)
        assessed = set(graded.summaries["_course"].to_list())
        left_out = intake.courses.filter(~pl.col("_course").is_in(list(assessed)))
        if left_out.height:
            # every course not graded is named by a problem of its file
            named = " ".join(p.message for p in intake.problems)
            for pid, inf in left_out.select("patient_id", "infusion").iter_rows():
                assert f"{pid} (infusion {inf})" in named, f"mutant {n}: course {pid}/{inf} left out unnamed"
        if not intake.courses.height:
            assert intake.problems or not data.strip(), f"mutant {n}: nothing read and nothing said"


def test_damaged_files_through_the_command_line_exit_0_1_or_2() -> None:
    runner = CliRunner()
    rng = random.Random("carscore-fuzz-cli")
    for sample in SAMPLES:
        original = sample.read_bytes()
        for _ in range(8):
            data = mutate(mutate(original, rng), rng)
            result = runner.invoke(app, ["grade", "-", "--format", "json"], input=data)
            assert result.exit_code in (0, 1, 2), (result.exit_code, result.output[-500:])
            assert "Traceback" not in result.output
