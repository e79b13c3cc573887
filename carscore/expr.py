"""The condition language of rule files.

A closed grammar: literals, names, ``and``/``or``/``not``, comparisons,
``in [...]``, arithmetic and a fixed list of functions. Nothing else parses,
and nothing is ever handed to ``eval``. Parsing gives typed nodes that keep
their offset in the source text, so that an error inside a condition can
point at the exact column of the rule file.

    expr    := or
    or      := and ('or' and)*
    and     := not ('and' not)*
    not     := 'not' not | compare
    compare := sum (CMP sum | 'in' list | 'not' 'in' list)?
    sum     := product (('+' | '-') product)*
    product := unary (('*' | '/') unary)*
    unary   := '-' unary | atom
    atom    := NUMBER | STRING | 'true' | 'false' | 'null'
             | NAME | NAME '(' [expr (',' expr)*] ')' | '(' expr ')' | list
    list    := '[' [expr (',' expr)*] ']'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class ExprSyntaxError(Exception):
    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message = message
        self.offset = offset


# --- nodes -----------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    pos: int


@dataclass(frozen=True)
class Literal(Node):
    value: object


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class ListOf(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Membership(Node):
    operand: Node
    options: ListOf
    negated: bool = False


def names_in(node: Node) -> set[str]:
    """Every name a condition refers to (function names excluded)."""
    found: set[str] = set()

    def walk(n: Node) -> None:
        if isinstance(n, Name):
            found.add(n.name)
        elif isinstance(n, Call):
            for a in n.args:
                walk(a)
        elif isinstance(n, Unary):
            walk(n.operand)
        elif isinstance(n, Binary):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, ListOf):
            for a in n.items:
                walk(a)
        elif isinstance(n, Membership):
            walk(n.operand)
            walk(n.options)

    walk(node)
    return found


# --- tokens ----------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|!=|[-+*/<>(),\[\]])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}


@dataclass
class _Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m:
            ch = text[i]
            hint = " (use 'and', 'or', 'not')" if ch in "&|!" else ""
            hint = " (use '==' to compare)" if ch == "=" else hint
            raise ExprSyntaxError(f"unexpected character {ch!r}{hint}", i)
        kind = m.lastgroup or ""
        if kind != "space":
            word = m.group()
            if kind == "name" and word in _KEYWORDS:
                kind = word
            tokens.append(_Token(kind, word, i))
        i = m.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


# --- parser ----------------------------------------------------------------


@dataclass
class _Parser:
    tokens: list[_Token]
    i: int = 0
    depth: int = field(default=0)

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, what: str) -> _Token:
        tok = self.peek()
        if tok.kind != kind and tok.text != kind:
            found = "the end of the condition" if tok.kind == "end" else repr(tok.text)
            raise ExprSyntaxError(f"expected {what}, found {found}", tok.pos)
        return self.take()

    def parse(self) -> Node:
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            raise ExprSyntaxError(f"unexpected {tok.text!r} after a complete condition", tok.pos)
        return node

    def nested(self) -> None:
        """Guard every recursive step: a rule file cannot exhaust the stack."""
        self.depth += 1
        if self.depth > 100:
            raise ExprSyntaxError("condition nested too deeply", self.peek().pos)

    def parse_or(self) -> Node:
        self.nested()
        left = self.parse_and()
        while self.peek().kind == "or":
            tok = self.take()
            left = Binary(tok.pos, "or", left, self.parse_and())
        self.depth -= 1
        return left

    def parse_and(self) -> Node:
        left = self.parse_not()
        while self.peek().kind == "and":
            tok = self.take()
            left = Binary(tok.pos, "and", left, self.parse_not())
        return left

    def parse_not(self) -> Node:
        if self.peek().kind == "not":
            tok = self.take()
            self.nested()
            node = Unary(tok.pos, "not", self.parse_not())
            self.depth -= 1
            return node
        return self.parse_compare()

    def parse_compare(self) -> Node:
        left = self.parse_sum()
        tok = self.peek()
        if tok.text in _COMPARISONS:
            self.take()
            right = self.parse_sum()
            if self.peek().text in _COMPARISONS:
                raise ExprSyntaxError("chained comparisons are not allowed: join them with 'and'", self.peek().pos)
            return Binary(tok.pos, tok.text, left, right)
        if tok.kind == "in":
            self.take()
            return Membership(tok.pos, left, self.parse_list())
        if tok.kind == "not" and self.tokens[self.i + 1].kind == "in":
            self.take()
            self.take()
            return Membership(tok.pos, left, self.parse_list(), negated=True)
        return left

    def parse_sum(self) -> Node:
        left = self.parse_product()
        while self.peek().text in ("+", "-"):
            tok = self.take()
            left = Binary(tok.pos, tok.text, left, self.parse_product())
        return left

    def parse_product(self) -> Node:
        left = self.parse_unary()
        while self.peek().text in ("*", "/"):
            tok = self.take()
            left = Binary(tok.pos, tok.text, left, self.parse_unary())
        return left

    def parse_unary(self) -> Node:
        if self.peek().text == "-":
            tok = self.take()
            self.nested()
            node = Unary(tok.pos, "-", self.parse_unary())
            self.depth -= 1
            return node
        return self.parse_atom()

    def parse_list(self) -> ListOf:
        start = self.expect("[", "'[' to open a list")
        items: list[Node] = []
        if self.peek().text != "]":
            items.append(self.parse_or())
            while self.peek().text == ",":
                self.take()
                items.append(self.parse_or())
        self.expect("]", "',' or ']'")
        return ListOf(start.pos, tuple(items))

    def parse_atom(self) -> Node:
        tok = self.peek()
        if tok.kind == "number":
            self.take()
            value = float(tok.text)
            return Literal(tok.pos, int(value) if re.fullmatch(r"\d+", tok.text) else value)
        if tok.kind == "string":
            self.take()
            return Literal(tok.pos, tok.text[1:-1])
        if tok.kind in ("true", "false"):
            self.take()
            return Literal(tok.pos, tok.kind == "true")
        if tok.kind == "null":
            self.take()
            return Literal(tok.pos, None)
        if tok.kind == "name":
            self.take()
            if self.peek().text == "(":
                self.take()
                args: list[Node] = []
                if self.peek().text != ")":
                    args.append(self.parse_or())
                    while self.peek().text == ",":
                        self.take()
                        args.append(self.parse_or())
                self.expect(")", "',' or ')'")
                return Call(tok.pos, tok.text, tuple(args))
            return Name(tok.pos, tok.text)
        if tok.text == "(":
            self.take()
            inner = self.parse_or()
            self.expect(")", "')'")
            return inner
        if tok.text == "[":
            return self.parse_list()
        found = "the end of the condition" if tok.kind == "end" else repr(tok.text)
        raise ExprSyntaxError(f"expected a value, a name or '(', found {found}", tok.pos)


def parse(text: str) -> Node:
    """Parse a condition or value expression; raise ExprSyntaxError with offset."""
    return _Parser(tokenize(text)).parse()


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def parse_template(text: str) -> list[tuple[str, Node | None, int]]:
    """Split a reason text into literal parts and ``{expression}`` parts.

    Returns (literal, node, offset) triples: node is None for a literal part.
    """
    parts: list[tuple[str, Node | None, int]] = []
    last = 0
    for m in _PLACEHOLDER.finditer(text):
        if m.start() > last:
            parts.append((text[last : m.start()], None, last))
        try:
            node = parse(m.group(1))
        except ExprSyntaxError as exc:
            raise ExprSyntaxError(exc.message, m.start(1) + exc.offset) from None
        parts.append(("", node, m.start(1)))
        last = m.end()
    if last < len(text):
        parts.append((text[last:], None, last))
    return parts
