"""Where patient data comes from: files, folders and standard input, read
as named bytes so that every later message can name its file.

Nothing is skipped silently: a folder or file that cannot be read, and a
link that leads nowhere, are problems; a file reached twice (given twice, or
given and also inside a given folder, or by two paths through links) is read
once, with a note; a folder reached again through a link (a loop) is not
walked again, with a note.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from carscore.errors import InputProblem

STDIN = "-"
# Files a cohort folder holds that are not patient data: Excel's lock file
# beside an open workbook, and the "._" companions macOS writes on shared
# and FAT-formatted drives. Left out with a note.
_NOT_DATA_PREFIXES = ("~$", "._")
DATA_SUFFIXES = (".csv", ".tsv", ".parquet")


@dataclass
class Source:
    name: str
    data: bytes
    # a file read later (chunked reading streams large files): data stays empty until then
    path: str | None = None


def sources_from_paths(
    paths: list[str], stdin: bytes | None = None, *, notes: list[str] | None = None, lazy: bool = False
) -> tuple[list[Source], list[InputProblem]]:
    """Files and folders (their *.csv and *.tsv, recursively, following
    links) as named byte sources, in the order given (a folder's files in
    path order). `-` is standard input, given as `stdin`. Notes (files read
    once though reached twice, files left out) go to `notes` when given.
    ``lazy``: regular files are not read yet (``Source.path`` set, for the
    chunked reader); a file that cannot be read is named when it is read."""
    sources: list[Source] = []
    problems: list[InputProblem] = []
    said: list[str] = notes if notes is not None else []
    read_as: dict[str, str] = {}  # real path -> the name it was read under
    walked: dict[str, str] = {}  # real path of each folder walked -> the folder given that holds it

    def add(name: str) -> None:
        real = os.path.realpath(name)
        if real in read_as:
            first = read_as[real]
            said.append(f"{name}: given twice; read once" if first == name else f"{name}: the same file as {first}; read once")
            return
        read_as[real] = name
        if lazy and os.path.isfile(name):
            sources.append(Source(name, b"", path=name))
            return
        data, problem = file_bytes(name, name)
        if problem is not None:
            problems.append(problem)
        else:
            sources.append(Source(name, data))

    for p in paths:
        if p == STDIN:
            if STDIN in read_as:
                said.append("stdin: given twice; read once")
                continue
            read_as[STDIN] = STDIN
            data, problem = as_rows(STDIN, stdin or b"")
            if problem is not None:
                problems.append(problem)
            else:
                sources.append(Source("stdin", data))
            continue
        try:
            is_dir = Path(p).is_dir()
            exists = is_dir or os.path.exists(p)
        except OSError as exc:
            problems.append(InputProblem(p, f"cannot be read: {_reason(exc)}"))
            continue
        if is_dir:
            real = os.path.realpath(p)
            if real in walked:
                first = walked[real]
                said.append(f"{p}: given twice; read once" if first == p else f"{p}: already read in {first}; read once")
                continue
            before = len(problems)
            found = _walk(p, problems, said, walked)
            if not found and len(problems) == before:
                problems.append(InputProblem(p, "no CSV files in this folder"))
            for f in found:
                add(f)
        elif exists:
            add(p)  # a file, or a pipe (carscore grade <(...))
        elif os.path.islink(p):
            problems.append(InputProblem(p, "a link to a file or folder that does not exist"))
        else:
            problems.append(InputProblem(p, "no such file or folder"))
    return sources, problems


def file_bytes(path: str, name: str) -> tuple[bytes, InputProblem | None]:
    """A file's bytes as rows of text: a Parquet file is turned into its CSV rows."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return b"", InputProblem(name, f"cannot be read: {_reason(exc)}")
    return as_rows(name, data)


def as_rows(name: str, data: bytes) -> tuple[bytes, InputProblem | None]:
    from carscore.parquetin import is_parquet, parquet_as_csv

    return parquet_as_csv(name, data) if is_parquet(data) else (data, None)


def _walk(root: str, problems: list[InputProblem], notes: list[str], seen: dict[str, str]) -> list[str]:
    """The data files under a folder, following links to folders but never
    walking one real folder twice (a link back up the tree would loop).
    `seen` maps the real path of every folder walked to the folder given."""
    found: list[str] = []
    seen[os.path.realpath(root)] = root
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            problems.append(InputProblem(folder, f"this folder cannot be read ({_reason(exc)}); its files are not included"))
            continue
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError as exc:
                problems.append(InputProblem(entry.path, f"cannot be read: {_reason(exc)}"))
                continue
            if is_dir:
                real = os.path.realpath(entry.path)
                if real in seen:
                    # a link back up the tree, or a folder also given by itself
                    notes.append(f"{entry.path}: already read in {seen[real]}; not read again")
                    continue
                seen[real] = root
                pending.append(entry.path)
                continue
            if not entry.name.lower().endswith(DATA_SUFFIXES):
                continue
            if entry.name.startswith(_NOT_DATA_PREFIXES):
                notes.append(f"{entry.path}: left out (a lock or metadata file, not patient data)")
                continue
            if entry.is_symlink() and not os.path.exists(entry.path):
                problems.append(InputProblem(entry.path, "a link to a file that does not exist"))
                continue
            found.append(entry.path)
    # the order of the files in the folder tree, as before links were followed
    return sorted(found, key=lambda f: Path(f).parts)


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)
