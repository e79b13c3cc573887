"""Where results go: standard output and files, written whole or not at all.

A file is written through a temporary file in the same folder and renamed
over the target only once complete; standard streams closed by the caller
are held by /dev/null so that no file carscore opens takes their number;
every failure to write is one sentence (exit 2), never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# standard streams that were closed when carscore started (``>&-``, ``<&-``):
# /dev/null holds their place so that no file opened later takes their number
CLOSED_STREAMS: set[int] = set()


class OutputError(Exception):
    """The result could not be written where it was asked for (exit 2)."""


# --- standard streams -----------------------------------------------------------


def reserve_standard_streams() -> None:
    """A standard stream closed by the caller (``>&-``) keeps its number taken by
    /dev/null, so that a file carscore opens can never become "stdout"; the
    commands then say that the stream is closed instead of writing nowhere."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            CLOSED_STREAMS.add(fd)
            try:
                null = os.open(os.devnull, os.O_RDWR)
                if null != fd:
                    os.dup2(null, fd)
                    os.close(null)
            except OSError:
                pass


def stdout_closed() -> bool:
    return 1 in CLOSED_STREAMS or sys.stdout is None


def silence_stdout() -> None:
    """After a broken pipe or a failed write, point stdout at /dev/null so that
    Python's last flush at exit cannot fail a second time."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno() if sys.stdout is not None else 1)
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def cannot(what: str, exc: OSError) -> str:
    import errno

    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOENT: "no such file or folder",
        errno.EISDIR: "it is a folder",
    }
    if hasattr(errno, "EDQUOT"):
        reasons[errno.EDQUOT] = "the disk quota is exceeded"
    return f"cannot write {what}: {reasons.get(exc.errno or 0, exc.strerror or str(exc))}"


@contextmanager
def stdout_errors() -> Iterator[None]:
    """A failure to write standard output becomes a sentence (exit 2)."""
    if stdout_closed():
        raise OutputError("standard output is closed, so the result cannot be shown; give -o FILE to write it to a file")
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        raise OutputError("the output was cut short: the program reading it stopped (broken pipe)") from None
    except OSError as exc:
        silence_stdout()
        raise OutputError(cannot("to standard output", exc) + "; the output is incomplete") from None


def check_stdout_usable(output: Path | None) -> None:
    """A result for a closed standard output: said before any work is done."""
    if (output is None or str(output) == "-") and stdout_closed():
        raise OutputError("standard output is closed, so the result cannot be shown; give -o FILE to write it to a file")


def read_stdin() -> bytes:
    if 0 in CLOSED_STREAMS or sys.stdin is None:
        raise usage("standard input is closed, so '-' has nothing to read; give a file name instead")
    try:
        if sys.stdin.isatty():
            say("reading CSV from the terminal; end it with Ctrl-D")
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    except (OSError, ValueError) as exc:
        raise usage(f"cannot read standard input: {getattr(exc, 'strerror', None) or exc}") from None
    return data.encode("utf-8") if isinstance(data, str) else data


# --- writing the result ---------------------------------------------------------


def write_all(stream: Any, data: bytes) -> None:
    """Write every byte: a binary stream may accept only part of a large write
    (a pipe whose reader has gone), and the rest must not be lost silently."""
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if written is None:  # a non-blocking stream that cannot take more now
            raise BlockingIOError("the output cannot take more data")
        if written <= 0:
            raise OSError(f"the output accepted nothing ({written} bytes written)")
        view = view[written:]
    stream.flush()


def _pieces(data: bytes | Iterable[bytes]) -> Iterable[bytes]:
    """A result given whole, or piece by piece (a registry's JSON is never held
    whole): the next piece is made while this one is written."""
    if isinstance(data, (bytes, bytearray)):
        yield data
        return
    from concurrent.futures import ThreadPoolExecutor

    pieces = iter(data)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="carscore-write") as maker:
        ahead = maker.submit(next, pieces, None)
        while (piece := ahead.result()) is not None:
            ahead = maker.submit(next, pieces, None)
            yield piece


def to_stdout(data: bytes | Iterable[bytes]) -> None:
    with stdout_errors():
        sys.stdout.flush()
        buffer = getattr(sys.stdout, "buffer", None)
        for piece in _pieces(data):
            if buffer is not None:  # data is UTF-8 whatever the terminal's locale
                write_all(buffer, piece)
            else:
                sys.stdout.write(piece.decode("utf-8"))


def write(data: bytes | Iterable[bytes], output: Path | None) -> None:
    if output is None or str(output) == "-":
        to_stdout(data)
    else:
        write_file(output, data)


def write_file(output: Path, data: bytes | Iterable[bytes]) -> None:
    """Write ``data`` to ``output`` through a temporary file in the same folder,
    renamed over the target only once complete: a failure (full disk,
    Ctrl-C, ...) never leaves a truncated file in place of a previous good one.
    A device or pipe (/dev/null, /dev/stdout) is written directly."""
    replacement = Replacement.of(output)
    if replacement is None:
        try:
            with open(output.resolve() if output.is_symlink() else output, "wb") as fh:
                for piece in _pieces(data):
                    write_all(fh, piece)
        except OSError as exc:
            raise OutputError(cannot(str(output), exc)) from None
        return
    with replacement as fh:
        for piece in _pieces(data):
            write_all(fh, piece)


class Replacement:
    """A regular file written through a temporary file in its folder (``with``
    gives the open temporary file): renamed over the target when the block
    ends normally, removed when it does not. Every failure is an OutputError."""

    def __init__(self, output: Path, target: Path, exists: bool, mode: int):
        self.output, self.target, self.exists, self.mode = output, target, exists, mode
        self.tmp = ""
        self.fh: Any = None

    @classmethod
    def of(cls, output: Path) -> Replacement | None:
        """The replacement for ``output``; None for a device or pipe, written directly."""
        import stat

        target = output
        try:
            if output.is_symlink():  # write where the link points, and keep the link
                target = output.resolve()
            exists = target.exists()
            if exists and target.is_dir():
                raise OutputError(f"cannot write {output}: it is a folder")
            if exists and not target.is_file():
                return None
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(cannot(str(output), exc)) from None
        folder = target.parent
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise OutputError(f"cannot write {output}: the folder {folder} {what}")
        if exists:
            mode = stat.S_IMODE(target.stat().st_mode)
            if not os.access(target, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
                raise OutputError(f"cannot write {output}: the file is read-only (it was left as it was)")
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        return cls(output, target, exists, mode)

    def open(self) -> Any:
        """The temporary file, open for writing."""
        import tempfile

        try:
            fd, self.tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".part", dir=self.target.parent)
        except OSError as exc:
            raise OutputError(cannot(str(self.output), exc)) from None
        self.fh = os.fdopen(fd, "wb")
        return self.fh

    def commit(self) -> None:
        """On disk, then renamed over the target."""
        try:
            self.fh.flush()
            fsync(self.fh.fileno())
            self.fh.close()
            os.chmod(self.tmp, self.mode)
            os.replace(self.tmp, self.target)
        except OSError as exc:
            raise self.failed(exc) from None
        except BaseException:  # Ctrl-C while syncing: the target as it was
            self.discard()
            raise

    def discard(self) -> None:
        """The temporary file removed; the target as it was."""
        try:
            self.fh.close()
        except OSError:
            pass
        try:
            os.unlink(self.tmp)
        except OSError:
            pass

    def failed(self, exc: OSError) -> OutputError:
        """The temporary file removed, and the failure in one sentence."""
        self.discard()
        kept = " (the previous file is unchanged)" if self.exists else ""
        return OutputError(cannot(str(self.output), exc) + kept)

    def __enter__(self) -> Any:
        return self.open()

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.commit()
        elif isinstance(exc, OSError):
            raise self.failed(exc) from None
        else:
            self.discard()


def fsync(fd: int) -> None:
    """On disk before the rename; a file system that cannot sync (some network
    and FUSE ones) is not an error, a full disk is."""
    import errno

    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, getattr(errno, "EOPNOTSUPP", errno.ENOTSUP)):
            raise


def refuse_input_as_output(output: Path | None, inputs: list[str]) -> None:
    """Writing the result onto a file that was read (a patient file, a rule
    file) would destroy the input: a usage error."""
    if output is None or str(output) == "-" or not output.exists():
        return
    for name in inputs:
        try:
            same = os.path.isfile(name) and os.path.samefile(output, name)
            # a data file inside a folder given as input is read as one of its files
            inside = (
                os.path.isdir(name)
                and output.suffix.lower() in (".csv", ".tsv")
                and output.resolve().is_relative_to(Path(name).resolve())
            )
        except (OSError, ValueError):
            continue
        if same or inside:
            shown = name if same else str(output)
            raise usage(f"refusing to write the result onto the input file {shown}; choose another output file")


def rule_files(engine: Any) -> list[str]:
    return [rs.file for rs in engine.rulesets]


def json_bytes(doc: dict[str, Any], indent: int) -> bytes:
    """JSON text as written: characters that hide or reorder text escaped (jsontext.JSON_UNSAFE)."""
    import re

    from carscore.jsontext import JSON_UNSAFE

    text = json.dumps(doc, indent=indent, ensure_ascii=False, default=str)
    text = re.sub(JSON_UNSAFE, lambda m: f"\\u{ord(m.group(0)):04x}", text)
    return (text + "\n").encode("utf-8")


def indented(output: Any) -> bool:
    """JSON is indented for a person at a terminal; compact (and much faster to
    write) for a file or a pipe."""
    return (output is None or str(output) == "-") and sys.stdout is not None and sys.stdout.isatty()


def usage(message: str) -> Exception:
    from carscore.errors import UsageError

    return UsageError(message)


def say(message: str) -> None:
    """One message line on stderr, shown literally (control characters escaped);
    a closed or broken stderr loses the message, never the exit code."""
    if sys.stderr is None or 2 in CLOSED_STREAMS:
        return
    try:
        from carscore.cli.console import printable
    except Exception:  # messages must print even when the rest of carscore cannot load

        def printable(value: Any, keep_newlines: bool = False) -> str:
            return str(value).encode("ascii", "backslashreplace").decode("ascii")

    try:
        sys.stderr.write(printable(message) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
