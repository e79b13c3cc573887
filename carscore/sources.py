"""Where patient data comes from: files, folders and standard input, read
as named bytes so that every later message can name its file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from carscore.errors import InputProblem


@dataclass
class Source:
    name: str
    data: bytes


def sources_from_paths(paths: list[str], stdin: bytes | None = None) -> tuple[list[Source], list[InputProblem]]:
    """Files and folders (their *.csv, recursively) as named byte sources."""
    sources: list[Source] = []
    problems: list[InputProblem] = []
    for p in paths:
        if p == "-":
            sources.append(Source("stdin", stdin or b""))
            continue
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() == ".csv")
            if not found:
                problems.append(InputProblem(p, "no CSV files in this folder"))
            for f in found:
                sources.append(_read_bytes(str(f), problems))
        elif path.is_file():
            sources.append(_read_bytes(p, problems))
        else:
            problems.append(InputProblem(p, "no such file or folder"))
    return [s for s in sources if s is not None], problems


def _read_bytes(name: str, problems: list[InputProblem]) -> Source | None:
    try:
        return Source(name, Path(name).read_bytes())
    except OSError as exc:
        problems.append(InputProblem(name, f"cannot be read: {exc.strerror or exc}"))
        return None
