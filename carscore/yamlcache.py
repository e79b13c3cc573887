"""Rule files read once: the located YAML of a file kept on disk, by content.

Reading a rule file with the safe loader (``carscore.yamlsafe``) is pure
Python and takes about a third of a second for the built-in rule sets and
the input contract, at every start. What it gives is fixed by the file's
text, so it is kept as JSON under the file text's SHA-256 and read back on
the next run in a few milliseconds, with every position (file line and
column of each value and key, and where each string stands in the text,
which error messages point into).

* Only what the safe loader accepted is kept; a file it refuses is read
  (and refused) again each time.
* The key also covers the loader's own code, PyYAML's version and Python's
  Unicode tables, so a changed loader never reads an old result.
* What is kept is plain JSON, never pickle: a kept file is data, and one
  that cannot be read as this module wrote it is ignored and written anew.
* The folder is ``$CARSCORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/carscore``,
  else ``~/.cache/carscore``; ``CARSCORE_CACHE_DIR=off`` reads every file
  afresh. A folder that others may write to (or that is not the user's) is
  not used, so no one else can change what a rule file says. The cache
  only saves time: when it cannot be read or written, the file is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from carscore import numbers, yamlpos, yamlsafe
from carscore.yamlpos import Origin, Text
from carscore.yamlsafe import LDict, LList, LStr

# Raised when what was kept is not what this module writes.
_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError)


def cache_folder() -> Path | None:
    """The folder the located YAML is kept in; None when caching is off."""
    given = os.environ.get("CARSCORE_CACHE_DIR")
    if given is not None:
        return None if given.strip().lower() in ("", "off", "0", "no") else Path(given)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "carscore"
    try:
        return Path.home() / ".cache" / "carscore"
    except RuntimeError:  # no home folder to be found
        return None


@lru_cache(maxsize=1)
def _loader_version() -> bytes:
    """What the located YAML depends on besides the file: the loader's code
    (this module's format too), PyYAML, Python and its Unicode tables."""
    digest = hashlib.sha256()
    for module in (sys.modules[__name__], yamlsafe, yamlpos, numbers):
        digest.update(Path(module.__file__ or "").read_bytes())
    digest.update(f"{yaml.__version__} {sys.version_info[:2]} {unicodedata.unidata_version}".encode())
    return digest.digest()


def _usable(folder: Path) -> bool:
    """Whether the folder is the user's own and no one else can write to it."""
    try:
        info = folder.stat()
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        return False
    if hasattr(os, "getuid"):
        return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return True


def _key(text: str) -> str | None:
    try:
        version = _loader_version()
    except OSError:  # the loader's source is not there to be read: no cache
        return None
    return hashlib.sha256(version + text.encode("utf-8", "surrogatepass")).hexdigest()


def recall(text: str, file: str) -> tuple[Any, str | None]:
    """The located YAML of ``text`` if it was kept, else None; and the key to keep it under."""
    folder = cache_folder()
    key = _key(text) if folder is not None else None
    if folder is None or key is None or not _usable(folder):
        return None, key
    try:
        kept = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        if kept["key"] != key:
            return None, key
        return _decode(kept["value"], file, Text(text)), key
    except (OSError, *_UNREADABLE):
        return None, key


def keep(key: str | None, value: Any) -> None:
    """Keep the located YAML under its key; quietly not when the folder cannot be written."""
    folder = cache_folder()
    if folder is None or key is None:
        return
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _usable(folder):
            return
        data = json.dumps({"key": key, "value": _encode(value)}, ensure_ascii=False, separators=(",", ":"))
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".part")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(temporary, folder / f"{key}.json")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except (OSError, ValueError):
        return


# The kept form: a string is ["s", text, line, col, quote, start, end, style],
# a mapping ["d", line, col, [key, value, ...]], a list ["l", line, col,
# [item, ...]]; numbers, true, false and null are themselves.


def _encode(value: Any) -> Any:
    if isinstance(value, LStr):
        origin = value.origin
        if origin is None:
            raise ValueError("a string without its place in the file")
        return ["s", str(value), value.line, value.col, value.quote, origin.start, origin.end, origin.style]
    if isinstance(value, LDict):
        items: list[Any] = []
        for k, v in value.items():
            items += [_encode(k), _encode(v)]
        return ["d", value.line, value.col, items]
    if isinstance(value, LList):
        return ["l", value.line, value.col, [_encode(v) for v in value]]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise ValueError(f"a value the safe loader does not give: {type(value).__name__}")


def _decode(kept: Any, file: str, source: Text) -> Any:
    if not isinstance(kept, list):
        if kept is None or isinstance(kept, (bool, int, float)):
            return kept
        raise ValueError("not a kept value")
    kind = kept[0]
    if kind == "s":
        _, string, line, col, quote, start, end, style = kept
        text = LStr(string)
        text.file, text.line, text.col, text.quote = file, line, col, quote
        text.origin = Origin(source, start, end, style)
        return text
    _, line, col, items = kept
    value: LDict | LList
    if kind == "d":
        value = LDict()
        value.key_at = {}
        for i in range(0, len(items), 2):
            key = _decode(items[i], file, source)
            value.key_at[key] = (key.line, key.col)
            value[key] = _decode(items[i + 1], file, source)
    elif kind == "l":
        value = LList(_decode(v, file, source) for v in items)
    else:
        raise ValueError("not a kept value")
    value.file, value.line, value.col = file, line, col
    return value
