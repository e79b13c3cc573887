"""Reading rule-like YAML files (rule sets, the contract, import mappings):
located text and expressions, and a reader of typed fields that keeps every
problem with its ``file:line:col`` instead of stopping at the first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carscore.errors import RuleError, RuleErrors
from carscore.expr import ExprSyntaxError, Node, parse, parse_template
from carscore.yamlsafe import MAX_FILE_CHARS, LDict, LStr, load_yaml, position_in, where

IDENT_PATTERN = "lower-case letters, digits and '_', starting with a letter"


@dataclass(frozen=True)
class Source:
    """An expression or text in a rule file, with its position."""

    text: str
    file: str
    line: int
    col: int
    quote: int = 0
    located: LStr | None = None

    def error(self, message: str, offset: int = 0) -> RuleError:
        line, col = position_in(self.located, self.line, self.col, self.quote, offset)
        return RuleError(message, self.file, line, col)


@dataclass(frozen=True)
class Expression:
    source: Source
    node: Node


@dataclass(frozen=True)
class Template:
    source: Source
    parts: tuple[tuple[str, Node | None, int], ...]


class FieldReader:
    """Typed fields out of located YAML, every problem kept with its file:line:col."""

    def __init__(self, file: str):
        self.file = file
        self.errors: list[RuleError] = []

    def err(self, message: str, at: Any, fallback: Any = None) -> None:
        file, line, col = where(at, fallback)
        self.errors.append(RuleError(message, file or self.file, line, col))

    def key_err(self, mapping: LDict, key: str, message: str) -> None:
        line, col = mapping.key_at.get(key, (mapping.line, mapping.col))
        self.errors.append(RuleError(message, self.file, line, col))

    def mapping(self, value: Any, what: str, at: Any) -> LDict | None:
        if not isinstance(value, LDict):
            self.err(f"{what} must be a mapping of names to values", value, at)
            return None
        return value

    def fields(self, mapping: LDict, allowed: set[str], required: set[str], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.key_err(mapping, key, f"unknown field '{key}' in {what} (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(mapping)):
            self.err(f"{what} is missing the field '{key}'", mapping)

    def text(self, mapping: LDict, key: str, what: str, required: bool = True) -> str:
        value = mapping.get(key)
        if value is None:
            return ""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key == "version":
            # 1.10 would be read as the number 1.1: a version is text
            self.key_err(mapping, key, f"'version' of {what} must be text: write it in quotes (1.10 would read as 1.1)")
            return str(value)
        if not isinstance(value, str) or (required and not value.strip()):
            self.err(f"'{key}' of {what} must be text", value, mapping)
            return ""
        return str(value)

    def source(self, value: Any, fallback: Any) -> Source:
        file, line, col = where(value, fallback)
        quote = value.quote if isinstance(value, LStr) else 0
        return Source(str(value), file or self.file, line, col, quote, value if isinstance(value, LStr) else None)

    def expression(self, value: Any, fallback: Any, what: str) -> Expression | None:
        if isinstance(value, bool):
            value_text = "true" if value else "false"
        elif isinstance(value, str):
            value_text = value
        else:
            self.err(f"{what} must be a condition written as text", value, fallback)
            return None
        src = self.source(value, fallback)
        src = Source(value_text, src.file, src.line, src.col, src.quote, src.located)
        try:
            return Expression(src, parse(value_text))
        except ExprSyntaxError as exc:
            self.errors.append(src.error(exc.message, exc.offset))
            return None

    def template(self, value: Any, fallback: Any) -> Template | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.err("a reason must be text", value, fallback)
            return None
        src = self.source(value, fallback)
        try:
            return Template(src, tuple(parse_template(str(value))))
        except ExprSyntaxError as exc:
            self.errors.append(src.error(exc.message, exc.offset))
            return None

    def identifier(self, name: Any, at: Any, what: str) -> bool:
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            self.err(f"{what} '{name}' must be {IDENT_PATTERN}", name, at)
            return False
        return True


def load_yaml_file(path: Path, what: str) -> tuple[object, bytes]:
    """A rule, case or mapping file read safely: its located YAML and its bytes.
    Refused with a sentence (RuleErrors): too big, not UTF-8, not readable, unsafe YAML."""
    file = str(path)
    try:
        # refuse a huge file before reading it into memory (UTF-8: at least one byte a character)
        if path.stat().st_size > MAX_FILE_CHARS * 4:
            raise RuleErrors([RuleError(f"the file has more than {MAX_FILE_CHARS:,} characters: too big for a {what}", file)])
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleErrors([RuleError(f"cannot read the {what}: {exc}", file)]) from None
    try:
        return load_yaml(text, file), data
    except RuleError as exc:
        raise RuleErrors([exc]) from None
