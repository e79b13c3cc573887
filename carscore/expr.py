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
    compare := sum (CMP sum | 'in' options | 'not' 'in' options)?
    options := list | NAME            (a list parameter)
    sum     := product (('+' | '-') product)*
    product := unary (('*' | '/') unary)*
    unary   := '-' unary | atom
    atom    := NUMBER | STRING | 'true' | 'false' | 'null'
             | NAME (or rule_set.NAME: another rule set's definition) | NAME '(' [expr (',' expr)*] ')' | '(' expr ')' | list
    list    := '[' [expr (',' expr)*] ']'

Conditions come from rule files, which may be broken or hostile, so parsing
is bounded: a condition has at most ``MAX_CONDITION_CHARS`` characters, the
parser recurses at most ``MAX_NESTING`` levels (parentheses, lists, call
arguments, 'not', unary '-'), and the tree it returns is at most
``MAX_TREE_DEPTH`` nodes deep, so that no code walking it recursively can
exhaust the stack. Chains of 'and' / 'or' are read in a loop and joined as
balanced trees (both are associative), so a long flat chain stays shallow.
Numbers are ASCII decimal, finite and bounded (``read_number``, also used
for numbers written as YAML values).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from carscore.numbers import NOT_FINITE, NumberError, read_number

# Longer than any real condition by far (the longest built-in one is a few
# hundred characters), short enough to parse in milliseconds.
MAX_CONDITION_CHARS = 10_000
# Parser recursion: each level of parentheses costs about nine Python frames,
# so 50 levels stay far below Python's recursion limit of 1000.
MAX_NESTING = 50
# Depth of the parsed tree (a sum of n terms is n deep): the compiler walks
# it recursively, a few frames per level.
MAX_TREE_DEPTH = 100


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


def _children(n: Node) -> tuple[Node, ...]:
    if isinstance(n, Call):
        return n.args
    if isinstance(n, Unary):
        return (n.operand,)
    if isinstance(n, Binary):
        return (n.left, n.right)
    if isinstance(n, ListOf):
        return n.items
    if isinstance(n, Membership):
        return (n.operand, n.options)
    return ()


def names_in(node: Node) -> set[str]:
    """Every name a condition refers to (function names excluded); walked
    with an explicit stack, whatever the shape of the tree."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Name):
            found.add(n.name)
        stack.extend(_children(n))
    return found


def _check_depth(node: Node) -> None:
    """Refuse a tree deeper than MAX_TREE_DEPTH (walked without recursion),
    pointing at the first node found beyond it."""
    stack = [(node, 1)]
    while stack:
        n, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            raise ExprSyntaxError(
                f"condition nested too deeply (more than {MAX_TREE_DEPTH} levels of operators and parentheses)", n.pos
            )
        stack.extend((child, depth + 1) for child in _children(n))


# --- tokens ----------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
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
            if unicodedata.category(ch) == "Nd":
                # int() and float() would read it; the grammar does not
                raise ExprSyntaxError(f"{ch!r} is a digit other than 0-9: write numbers with 0-9", i)
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

    def deeper(self, parse: Callable[[], Node], opener: _Token) -> Node:
        """Every recursive step of the grammar goes through here ('(', a list
        item, a call argument, 'not', unary '-'): a rule file cannot nest
        deeper than MAX_NESTING, so it cannot exhaust the stack. An error
        points at the token that opened the level one too many."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExprSyntaxError(f"condition nested too deeply (more than {MAX_NESTING} levels)", opener.pos)
        node = parse()
        self.depth -= 1
        return node

    def parse_or(self) -> Node:
        operands, ops = [self.parse_and()], []
        while self.peek().kind == "or":
            ops.append(self.take())
            operands.append(self.parse_and())
        return _balanced("or", operands, ops)

    def parse_and(self) -> Node:
        operands, ops = [self.parse_not()], []
        while self.peek().kind == "and":
            ops.append(self.take())
            operands.append(self.parse_not())
        return _balanced("and", operands, ops)

    def parse_not(self) -> Node:
        if self.peek().kind == "not":
            tok = self.take()
            return Unary(tok.pos, "not", self.deeper(self.parse_not, tok))
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
            return Membership(tok.pos, left, self.parse_options())
        if tok.kind == "not" and self.tokens[self.i + 1].kind == "in":
            self.take()
            self.take()
            return Membership(tok.pos, left, self.parse_options(), negated=True)
        return left

    def parse_options(self) -> ListOf:
        """The options after 'in': a list, or the name of a list parameter."""
        tok = self.peek()
        if tok.kind == "name" and self.tokens[self.i + 1].text != "(":
            self.take()
            return ListOf(tok.pos, (Name(tok.pos, tok.text),))
        return self.parse_list()

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
            return Unary(tok.pos, "-", self.deeper(self.parse_unary, tok))
        return self.parse_atom()

    def parse_list(self) -> ListOf:
        start = self.expect("[", "'[' to open a list")
        items: list[Node] = []
        if self.peek().text != "]":
            items.append(self.deeper(self.parse_or, start))
            while self.peek().text == ",":
                self.take()
                items.append(self.deeper(self.parse_or, start))
        self.expect("]", "',' or ']'")
        return ListOf(start.pos, tuple(items))

    def parse_atom(self) -> Node:
        tok = self.peek()
        if tok.kind == "number":
            self.take()
            try:
                return Literal(tok.pos, read_number(tok.text))
            except NumberError as exc:
                raise ExprSyntaxError(exc.message, tok.pos) from None
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
            if tok.text.lower() in NOT_FINITE and self.peek().text != "(":
                # not a name to look up: the value Python would give it is not a number to compare with
                raise ExprSyntaxError(f"'{tok.text}' is not a finite number: conditions use finite numbers only", tok.pos)
            if self.peek().text == "(":
                paren = self.take()
                args: list[Node] = []
                if self.peek().text != ")":
                    args.append(self.deeper(self.parse_or, paren))
                    while self.peek().text == ",":
                        self.take()
                        args.append(self.deeper(self.parse_or, paren))
                self.expect(")", "',' or ')'")
                return Call(tok.pos, tok.text, tuple(args))
            return Name(tok.pos, tok.text)
        if tok.text == "(":
            inner = self.deeper(self.parse_or, self.take())
            self.expect(")", "')'")
            return inner
        if tok.text == "[":
            return self.parse_list()
        found = "the end of the condition" if tok.kind == "end" else repr(tok.text)
        raise ExprSyntaxError(f"expected a value, a name or '(', found {found}", tok.pos)


def _balanced(op: str, operands: list[Node], ops: list[_Token]) -> Node:
    """Join ``a op b op c ...`` as a balanced tree: the same meaning ('and'
    and 'or' are associative, also in three-valued logic) at depth log2(n)
    rather than n. Each node keeps the position of the operator it stands
    for; up to three operands the tree is the usual left-nested one."""
    if len(operands) == 1:
        return operands[0]
    mid = (len(operands) + 1) // 2
    left = _balanced(op, operands[:mid], ops[: mid - 1])
    right = _balanced(op, operands[mid:], ops[mid:])
    return Binary(ops[mid - 1].pos, op, left, right)


def parse(text: str) -> Node:
    """Parse a condition or value expression; raise ExprSyntaxError with offset."""
    if len(text) > MAX_CONDITION_CHARS:
        raise ExprSyntaxError(f"condition too long ({len(text):,} characters; at most {MAX_CONDITION_CHARS:,})", 0)
    node = _Parser(tokenize(text)).parse()
    _check_depth(node)
    return node


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
