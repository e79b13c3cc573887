"""Safe YAML loading that keeps line and column of every value.

Rule files are data from anywhere: only the plain YAML types are accepted
(no object tags, no aliases to build code), a repeated key is an error rather
than a silent overwrite, and every mapping, list and string remembers where it
stood so that a later validation error can say ``file:line:col``.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from carscore.errors import RuleError

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


class Located:
    """Mixin: where a value stood in its file (1-based line and column)."""

    file: str = ""
    line: int = 0
    col: int = 0


class LStr(str, Located):
    """A string with its position; ``quote`` is 1 when written in quotes, so
    an offset inside the text maps to the right column. ``segments`` lists
    (line, col, length) of each source line the text was folded from."""

    quote: int = 0
    segments: tuple[tuple[int, int, int], ...] = ()


def position_in(text: LStr | None, line: int, col: int, quote: int, offset: int) -> tuple[int, int]:
    """File line and column of character ``offset`` of a (possibly multi-line) scalar."""
    segments = text.segments if isinstance(text, LStr) and text.segments else ((line, col + quote, 1 << 30),)
    for seg_line, seg_col, length in segments:
        if offset <= length:
            return seg_line, seg_col + offset
        offset -= length + 1
    last_line, last_col, length = segments[-1]
    return last_line, last_col + length


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


def _position(obj: Located, node: Node, file: str) -> None:
    obj.file = file
    obj.line = node.start_mark.line + 1
    obj.col = node.start_mark.column + 1


class _Builder:
    def __init__(self, file: str, text: str = ""):
        self.file = file
        self.lines = text.splitlines()
        self.constructor = yaml.SafeLoader("")

    def segments(self, node: ScalarNode) -> tuple[tuple[int, int, int], ...]:
        """Where each folded line of a multi-line scalar stands in the file."""
        start, end = node.start_mark, node.end_mark
        if start.line == end.line and node.style not in ("|", ">"):
            return ()
        out = []
        if node.style in ("|", ">"):
            body = range(start.line + 1, min(end.line + 1, len(self.lines)))
            indents = [len(self.lines[i]) - len(self.lines[i].lstrip()) for i in body if self.lines[i].strip()]
            indent = min(indents) if indents else 0
            for i in body:
                if self.lines[i].strip():
                    out.append((i + 1, indent + 1, len(self.lines[i].rstrip()) - indent))
            return tuple(out)
        quote = 1 if node.style in ("'", '"') else 0
        for i in range(start.line, min(end.line + 1, len(self.lines))):
            raw = self.lines[i]
            if i == start.line:
                first = start.column + quote
                out.append((i + 1, first + 1, len(raw[first:].rstrip())))
            else:
                stripped = raw.lstrip()
                if stripped:
                    out.append((i + 1, len(raw) - len(stripped) + 1, len(stripped.rstrip())))
        return tuple(out)

    def fail(self, node: Node, message: str) -> RuleError:
        return RuleError(message, self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node) -> Any:
        if node.tag not in _PLAIN_TAGS:
            raise self.fail(node, f"YAML tag {node.tag!r} is not allowed in a rule file (plain data only)")
        if isinstance(node, MappingNode):
            out = LDict()
            out.key_at = {}
            _position(out, node, self.file)
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise self.fail(key_node, "YAML merge keys ('<<') are not allowed in a rule file")
                key = self.build(key_node)
                if not isinstance(key, str):
                    raise self.fail(key_node, f"keys must be words, not {key!r}")
                if key in out:
                    first = out.key_at[key]
                    raise self.fail(key_node, f"duplicate key '{key}' (first given on line {first[0]})")
                out.key_at[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.build(value_node)
            return out
        if isinstance(node, SequenceNode):
            seq = LList(self.build(item) for item in node.value)
            _position(seq, node, self.file)
            return seq
        assert isinstance(node, ScalarNode)
        value = self.constructor.construct_object(node, deep=True)
        if isinstance(value, str):
            text = LStr(value)
            _position(text, node, self.file)
            text.quote = 1 if node.style in ("'", '"') else 0
            text.segments = self.segments(node)
            return text
        return value


def load_yaml(text: str, file: str) -> Any:
    """Parse one YAML document safely; raise RuleError with file:line:col."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise RuleError(f"not valid YAML: {exc.problem or exc.context}", file, line, col) from None
    except yaml.YAMLError as exc:
        raise RuleError(f"not valid YAML: {exc}", file) from None
    if node is None:
        raise RuleError("the file is empty", file, 1, 1)
    return _Builder(file, text).build(node)
