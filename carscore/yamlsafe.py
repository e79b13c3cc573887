"""Safe YAML loading that keeps line and column of every value.

Rule files are data from anywhere, so they are read defensively:

* only the plain YAML types are accepted (no object tags), a repeated key is
  an error rather than a silent overwrite, merge keys are refused;
* anchors and aliases are refused: a rule file has no use for them, and an
  alias is what a "billion laughs" file multiplies (or points back at itself);
* the file is read from the parser's event stream with an explicit stack,
  never by recursion, and nesting deeper than ``MAX_DEPTH`` is refused;
* numbers are read by one strict rule (``carscore.expr.read_number``, shared
  with conditions): ASCII decimal digits only, finite, bounded in size;
  YAML 1.1 readings that surprise (``010`` as octal 8, ``1:30`` as base-60
  90, ``.nan``, ``.inf``) are refused with a sentence;
* every mapping, list and string remembers where it stood so that a later
  validation error can say ``file:line:col`` -- and, for a condition written
  over several lines, the line and column of the offending token inside it.

What a file gives is kept between runs by ``carscore.yamlcache``, positions
and all, under the SHA-256 of its text and of this module's code.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.error import Mark
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
)
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from carscore.errors import RuleError
from carscore.numbers import NumberError, looks_like_number, read_number, shown
from carscore.yamlpos import Origin, Text, scalar_start

# A rule file nests a handful of levels (decisions > cases > worst > criterion);
# 64 is far beyond any real one and far below what could strain the stack.
MAX_DEPTH = 64
# The built-in rule files are under 10,000 characters each; a file a hundred
# times bigger is not a rule file, and reading it would only cost memory.
MAX_FILE_CHARS = 2_000_000

_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_TAG + kind for kind in ("str", "int", "float", "bool", "null", "map", "seq")}
_MERGE_TAG = _TAG + "merge"
# The spellings PyYAML resolves to null and to true/false (YAML 1.1, so
# yes/no/on/off too), to check a scalar given an explicit !!null or !!bool tag.
_NULL_FORMS = {"", "~", "null", "Null", "NULL"}
_BOOL_FORMS = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}
# Characters with no place in a rule file's text: control characters (only an
# escape such as "\e" can put one in; a terminal escape sequence in a reason
# would be printed as-is), lone surrogates ("\uD800": cannot be written out)
# and the bidirectional controls that make text display otherwise than it
# reads ("Trojan source"), written raw or escaped.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class Located:
    """Mixin: where a value stood in its file (1-based line and column)."""

    file: str = ""
    line: int = 0
    col: int = 0


class LStr(str, Located):
    """A string with its position; ``quote`` is 1 when written in quotes, so
    an offset inside the text maps to the right column. ``origin`` is where
    the scalar stands in the file text, to map any offset of a multi-line
    (folded, literal or quoted) scalar back to its line and column."""

    quote: int = 0
    origin: Origin | None = None


class LDict(dict, Located):
    """A mapping whose keys remember their positions in ``key_at``."""

    key_at: dict[str, tuple[int, int]]


class LList(list, Located):
    pass


def where(value: Any, fallback: Located | None = None) -> tuple[str, int, int]:
    for v in (value, fallback):
        if isinstance(v, Located) and v.line:
            return v.file, v.line, v.col
    return (getattr(fallback, "file", "") if fallback is not None else ""), 0, 0


def position_in(text: LStr | None, line: int, col: int, quote: int, offset: int) -> tuple[int, int]:
    """File line and column of character ``offset`` of a (possibly multi-line) scalar.

    ``line``, ``col`` and ``quote`` are the scalar's own position, used when
    the text has no origin (a value that was not a string in the file)."""
    if isinstance(text, LStr) and text.origin is not None:
        found = text.origin.position(str(text), offset)
        if found is not None:
            return found
        if text.origin.multi_line:
            # not mapped (a YAML form this module does not replay): the
            # scalar's start is right, a guessed column further on might not be
            return line, col
    return line, col + quote + offset


@dataclass
class _Open:
    """A mapping or list being filled; for a mapping, the key waiting for its value."""

    value: LDict | LList
    key: str | None = None


class _Builder:
    def __init__(self, file: str, text: str):
        self.file = file
        self.source = Text(text)
        self.loader = yaml.SafeLoader(text)
        self.stack: list[_Open] = []
        self.anchor: NodeEvent | None = None  # the first anchor seen
        self.root: Any = None
        self.documents = 0  # 0 once read: the file held no document at all

    def fail(self, mark: Mark, message: str) -> RuleError:
        return RuleError(message, self.file, mark.line + 1, mark.column + 1)

    def locate(self, obj: Located, mark: Mark) -> None:
        obj.file = self.file
        obj.line = mark.line + 1
        obj.col = mark.column + 1

    def events(self) -> Iterator[Event]:
        """The parser's events. PyYAML's reader, scanner and parser work
        with explicit stacks (nothing recurses with the nesting); a few
        hostile escapes ("\\UFFFFFFFF") make it fail with a Python error
        instead of a YAML one: those are reported like YAML errors."""
        while True:
            try:
                if not self.loader.check_event():
                    return
                event = self.loader.get_event()
            except (ValueError, OverflowError):
                raise self.fail(self.loader.get_mark(), "not valid YAML: an escape sequence gives no valid character") from None
            yield event

    def run(self) -> Any:
        try:
            for event in self.events():
                self.take(event)
        finally:
            self.loader.dispose()
        if self.anchor is not None:
            # refused here rather than when seen, so that a more telling
            # problem found after it (a merge key '<<: *x') is the one named
            raise self.fail(self.anchor.start_mark, "YAML anchors ('&name') are not allowed in a rule file: write each value out")
        return self.root

    def take(self, event: Event) -> None:
        if isinstance(event, DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.fail(event.start_mark, "a rule file holds one YAML document, but a second one starts here")
            return
        if isinstance(event, (SequenceEndEvent, MappingEndEvent)):
            self.stack.pop()
            return
        if not isinstance(event, NodeEvent):
            return  # stream start and end, document end
        if isinstance(event, AliasEvent):
            raise self.fail(event.start_mark, "YAML aliases ('*name') are not allowed in a rule file: write the value out")
        if event.anchor is not None and self.anchor is None:
            self.anchor = event
        is_key = bool(self.stack) and isinstance(self.stack[-1].value, LDict) and self.stack[-1].key is None
        if isinstance(event, ScalarEvent):
            self.scalar(event, is_key)
        elif isinstance(event, CollectionStartEvent):
            self.collection(event, is_key)

    def collection(self, event: CollectionStartEvent, is_key: bool) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(event.start_mark, f"lists and mappings are nested more than {MAX_DEPTH} levels deep here")
        mapping = isinstance(event, MappingStartEvent)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(MappingNode if mapping else SequenceNode, None, event.implicit)
        if tag not in _PLAIN_TAGS:
            raise self.fail(event.start_mark, f"YAML tag {tag!r} is not allowed in a rule file (plain data only)")
        if is_key:
            raise self.fail(event.start_mark, "keys must be words, not a list or a mapping")
        value: LDict | LList
        if mapping:
            value = LDict()
            value.key_at = {}
        else:
            value = LList()
        self.locate(value, event.start_mark)
        self.add(value, event.start_mark)
        self.stack.append(_Open(value))

    def scalar(self, event: ScalarEvent, is_key: bool) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(ScalarNode, event.value, event.implicit)
        if is_key and tag == _MERGE_TAG:
            raise self.fail(event.start_mark, "YAML merge keys ('<<') are not allowed in a rule file")
        if tag == _TAG + "timestamp":
            raise self.fail(event.start_mark, f"'{shown(event.value)}' would be read as a date: put it in quotes if it is text")
        if tag not in _PLAIN_TAGS:
            raise self.fail(event.start_mark, f"YAML tag {tag!r} is not allowed in a rule file (plain data only)")
        value = self.scalar_value(event, tag, is_key)
        if isinstance(value, str):
            text = LStr(value)
            self.locate(text, event.start_mark)
            text.quote = 1 if event.style in ("'", '"') else 0
            start = scalar_start(self.source.text, event.start_mark.index)
            text.origin = Origin(self.source, start, event.end_mark.index, event.style)
            self.add(text, event.start_mark)
        else:
            self.add(value, event.start_mark)

    def scalar_value(self, event: ScalarEvent, tag: str, is_key: bool = False) -> Any:
        """The value of a scalar, numbers read by the one strict rule."""
        text, plain = event.value, event.style is None
        mark = event.start_mark
        if tag in (_TAG + "int", _TAG + "float") or (plain and tag == _TAG + "str" and looks_like_number(text)):
            # YAML 1.1 number forms PyYAML would accept, each refused with why
            bare = text.lstrip("+-").lower()
            if bare.lstrip(".") in ("inf", "infinity", "nan"):
                raise self.fail(mark, f"'{shown(text)}' is not a finite number: a rule file holds finite numbers only")
            if ":" in text:
                raise self.fail(mark, f"'{shown(text)}' would be read as a base-60 number: put it in quotes if it is text")
            if "_" in text:
                raise self.fail(mark, f"'{shown(text)}': write the number without '_'")
            try:
                return read_number(text)
            except NumberError as exc:
                hint = ", or put it in quotes if it is text" if plain and exc.maybe_text else ""
                raise self.fail(mark, exc.message + hint) from None
        if tag == _TAG + "bool":
            if text.lower() not in _BOOL_FORMS:
                raise self.fail(mark, f"'{shown(text)}' is not true or false")
            return _BOOL_FORMS[text.lower()]
        if tag == _TAG + "null":
            if text not in _NULL_FORMS:
                raise self.fail(mark, f"'{shown(text)}' is not null: leave the value empty or write null")
            return None
        # text: refuse what only looks like text but would be read as a
        # number by Python (digits other than 0-9, nan, inf), and characters
        # that have no place in a rule file
        stripped = text.strip()
        if stripped and not stripped.isascii() and _python_reads_as_number(stripped):
            raise self.fail(mark, f"'{shown(text)}' is written with digits other than 0-9: write numbers with 0-9")
        if plain and _python_reads_as_number(stripped):
            if stripped.lstrip("+-").lower() in ("nan", "inf", "infinity"):
                if is_key:  # as in conditions, where these words are refused too
                    raise self.fail(mark, f"'{shown(text)}' cannot be a name: it reads as a number that is not finite")
                raise self.fail(mark, f"'{shown(text)}' is not a finite number: a rule file holds finite numbers only")
            raise self.fail(mark, f"'{shown(text)}' is not a decimal number: write it with digits 0-9, without '_'")
        for ch in text:
            if (unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\t\n") or ch in _BIDI_CONTROLS:
                raise self.fail(mark, f"the text holds the character U+{ord(ch):04X}, which has no place in a rule file")
        return text

    def add(self, value: Any, mark: Mark) -> None:
        """Put a value where it belongs: the document, a list, or a mapping
        (as the next key, or as the value of the waiting key)."""
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if isinstance(top.value, LList):
            top.value.append(value)
            return
        mapping = top.value
        if top.key is None:
            if not isinstance(value, str):
                raise self.fail(mark, f"keys must be words, not {value!r}")
            if value in mapping.key_at:
                first = mapping.key_at[value]
                raise self.fail(mark, f"duplicate key '{value}' (first given on line {first[0]})")
            mapping.key_at[value] = (mark.line + 1, mark.column + 1)
            top.key = value
        else:
            mapping[top.key] = value
            top.key = None


def _python_reads_as_number(text: str) -> bool:
    """Whether Python's float() would take this text for a number (it
    accepts digits of every script, 'nan', 'inf' and '_' between digits)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_yaml(text: str, file: str) -> Any:
    """Parse one YAML document safely; raise RuleError with file:line:col."""
    if len(text) > MAX_FILE_CHARS:
        raise RuleError(f"the file has more than {MAX_FILE_CHARS:,} characters: too big for a rule file", file, 1, 1)
    from carscore import yamlcache  # it reads back what this module builds

    kept, key = yamlcache.recall(text, file)
    if kept is not None:
        return kept
    try:
        builder = _Builder(file, text)
        root = builder.run()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise RuleError(f"not valid YAML: {exc.problem or exc.context}", file, line, col) from None
    except yaml.reader.ReaderError as exc:
        line, col = Text(text).line_col(exc.position)
        ch = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise RuleError(f"not valid YAML: the character U+{ord(ch):04X} is not allowed in a YAML file", file, line, col) from None
    except yaml.YAMLError as exc:
        raise RuleError("not valid YAML: " + " ".join(str(exc).split()), file) from None
    if builder.documents == 0:
        raise RuleError("the file is empty", file, 1, 1)
    yamlcache.keep(key, root)
    return root
