"""Compile parsed conditions into polars column expressions.

Every rule compiles once into an expression over the whole table (sorted by
course, then day), so that one pass grades a cohort. The function library is
in ``functions.py``; numeric kernels in ``kernels.py``.

Besides its expression, a compiled value knows:
- its kind (number, true/false, text) and level (one value per day, or per course);
- whether it is *causal*: computed from this day and earlier days only. A
  value that reads later days (a course aggregate, ``nearest()``) is not, and
  a day-level result built on it must declare that it looks ahead;
- whether it is *inexact*: the result of arithmetic on decimal data, compared
  to nine significant digits so that a boundary such as "exactly 2x" is not
  decided by floating-point rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import polars as pl

from carscore.expr import (
    Binary,
    Call,
    ExprSyntaxError,
    ListOf,
    Literal,
    Membership,
    Name,
    Node,
    Unary,
)

COURSE = "_course"
DAY = "day"
TIME = "time"

NUM, BOOL, TEXT, ANY = "number", "boolean", "text", "any"
LIST = "list"  # a list parameter: only after 'in'


# Relative tolerance of comparisons involving arithmetic results: decimal
# inputs such as 8.3 and 4.15 have no exact binary form, so products and
# quotients of them miss exact boundaries by a few units in the last place.
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Symbol:
    """What a name means inside a rule: its column expression and kind."""

    expr: pl.Expr
    type: str = ANY
    level: str = "day"  # "day" or "course"
    values: tuple[str, ...] | None = None  # enum words, for checking literals
    constant: object = None  # parameters: the value itself
    is_constant: bool = False
    causal: bool = True
    inexact: bool = False
    # why the value reads later days (the first function that does), for messages
    looks_ahead_via: str = ""


@dataclass(frozen=True)
class Compiled:
    expr: pl.Expr
    type: str
    level: str
    values: tuple[str, ...] | None = None
    constant: object = None
    is_constant: bool = False
    causal: bool = True
    inexact: bool = False
    looks_ahead_via: str = ""

    def symbol(self, expr: pl.Expr | None = None) -> Symbol:
        return Symbol(
            self.expr if expr is None else expr,
            self.type,
            self.level,
            self.values,
            self.constant,
            self.is_constant,
            self.causal,
            self.inexact,
            self.looks_ahead_via,
        )


class CompileError(ExprSyntaxError):
    """A condition that cannot be compiled: ``offset`` within its text, and the
    text's place in its rule file once known (``source``, a rulefile.Source)."""

    def __init__(self, message: str, offset: int, source: object = None):
        super().__init__(message, offset)
        self.source = source

    def located(self, source: object) -> CompileError:
        """The same error, placed in the rule file (the innermost place wins)."""
        return self if self.source is not None else CompileError(self.message, self.offset, source)


Resolver = Callable[[str], Symbol | None]


def value_type(v: object) -> str:
    """The kind of a fixed value written in a rule (a literal or a parameter)."""
    if v is None:
        return ANY
    if isinstance(v, bool):
        return BOOL
    if isinstance(v, (int, float)):
        return NUM
    if isinstance(v, (list, tuple)):
        return LIST
    return TEXT


def combined(expr: pl.Expr, type_: str, level: str, *parts: Compiled, **extra: object) -> Compiled:
    """A value computed from ``parts``: causal only when all of them are."""
    causal = all(p.causal for p in parts)
    via = next((p.looks_ahead_via for p in parts if not p.causal), "")
    return Compiled(expr, type_, level, causal=causal, looks_ahead_via=via, **extra)  # type: ignore[arg-type]


def _level(*cs: Compiled) -> str:
    return "day" if any(c.level == "day" for c in cs) else "course"


def _flatten(node: Binary) -> list[Node]:
    """The operands of a chain of one logical operator (a or b or c ...),
    collected without recursion: long chains stay cheap."""
    operands: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Binary) and n.op == node.op:
            stack.append(n.right)
            stack.append(n.left)
        else:
            operands.append(n)
    return operands


_COMPARE = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _tolerant(op: str, a: pl.Expr, b: pl.Expr) -> pl.Expr:
    a, b = a.cast(pl.Float64), b.cast(pl.Float64)
    slack = pl.max_horizontal(a.abs(), b.abs()) * RELATIVE_TOLERANCE
    diff = a - b
    return {
        "==": diff.abs() <= slack,
        "!=": diff.abs() > slack,
        "<": diff < -slack,
        "<=": diff <= slack,
        ">": diff > slack,
        ">=": diff >= -slack,
    }[op]


class Compiler:
    def __init__(self, resolve: Resolver, row_level: bool = False, columns: frozenset[str] | None = None):
        self.resolve = resolve
        # row values read one assessment: no function that looks along the course
        self.row_level = row_level
        # the input columns, for captured(); the names captured() was asked about
        self.columns = columns
        self.captured: set[str] = set()

    def fail(self, message: str, node: Node) -> CompileError:
        return CompileError(message, node.pos)

    def compile(self, node: Node) -> Compiled:
        method = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    # -- atoms --
    def _literal(self, node: Literal) -> Compiled:
        v = node.value
        return Compiled(pl.lit(v), value_type(v), "course", constant=v, is_constant=True)

    def _name(self, node: Name) -> Compiled:
        sym = self.resolve(node.name)
        if sym is None:
            raise self.fail(f"unknown name '{node.name}' (not a column, parameter or defined value)", node)
        return Compiled(
            sym.expr,
            sym.type,
            sym.level,
            sym.values,
            sym.constant,
            sym.is_constant,
            sym.causal,
            sym.inexact,
            sym.looks_ahead_via or ("" if sym.causal else node.name),
        )

    def _listof(self, node: ListOf) -> Compiled:
        raise self.fail("a list is only allowed after 'in' or as a function argument", node)

    # -- operators --
    def _unary(self, node: Unary) -> Compiled:
        x = self.compile(node.operand)
        if node.op == "not":
            self._want(x, BOOL, node.operand, "'not'")
            return replace(x, expr=~x.expr, type=BOOL, values=None, constant=None, is_constant=False)
        self._want(x, NUM, node.operand, "'-'")
        return replace(x, expr=-x.expr, constant=-x.constant if x.is_constant else None)  # type: ignore[operator]

    def _logical(self, node: Binary) -> Compiled:
        parts = [self.compile(n) for n in _flatten(node)]
        for n, p in zip(_flatten(node), parts):
            self._want(p, BOOL, n, f"'{node.op}'")
        exprs = [p.expr for p in parts]
        # Kleene logic, as '&' and '|' on columns: unknown stays unknown unless decided
        out = exprs[0]
        for e in exprs[1:]:
            out = out & e if node.op == "and" else out | e
        return combined(out, BOOL, _level(*parts), *parts)

    def _binary(self, node: Binary) -> Compiled:
        op = node.op
        if op in ("and", "or"):
            return self._logical(node)
        a, b = self.compile(node.left), self.compile(node.right)
        level = _level(a, b)
        if op in ("+", "-", "*", "/"):
            self._want(a, NUM, node.left, f"'{op}'")
            self._want(b, NUM, node.right, f"'{op}'")
            ea, eb = a.expr, b.expr
            if op == "/":
                ea = ea.cast(pl.Float64)
            expr = {"+": ea + eb, "-": ea - eb, "*": ea * eb, "/": ea / eb}[op]
            return combined(expr, NUM, level, a, b, inexact=True)
        # comparisons
        if op in ("<", "<=", ">", ">="):
            self._want(a, NUM, node.left, f"'{op}'")
            self._want(b, NUM, node.right, f"'{op}'")
        else:
            self._check_enum(a, node.right, b)
            self._check_enum(b, node.left, a)
            if ANY not in (a.type, b.type) and a.type != b.type:
                raise self.fail(f"cannot compare a {a.type} with a {b.type}", node)
        if (a.inexact or b.inexact) and NUM in (a.type, b.type):
            expr = _tolerant(op, a.expr, b.expr)
        else:
            expr = _COMPARE[op](a.expr, b.expr)
        return combined(expr, BOOL, level, a, b)

    def _membership(self, node: Membership) -> Compiled:
        x = self.compile(node.operand)
        options = [self.compile(item) for item in node.options.items]
        for item, c in zip(node.options.items, options):
            if not c.is_constant:
                raise self.fail("the list after 'in' must hold fixed values or parameters", item)
            self._check_enum(x, item, c)
        values: list = []
        for c in options:
            values.extend(c.constant if isinstance(c.constant, (list, tuple)) else [c.constant])
        if not values:
            raise self.fail("the list after 'in' is empty", node.options)
        kinds = {type(v) is bool for v in values}, {isinstance(v, str) for v in values}
        if len(kinds[0]) > 1 or len(kinds[1]) > 1:
            raise self.fail("the list after 'in' must hold values of one kind", node.options)
        subject = x.expr
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            # compare as numbers whatever the column's integer or decimal type
            subject, values = subject.cast(pl.Float64), [float(v) for v in values]
        expr = subject.is_in(values)
        # 'x in [...]' is unknown when x was not recorded, like '=='
        expr = pl.when(x.expr.is_null()).then(None).otherwise(expr)
        return combined(~expr if node.negated else expr, BOOL, x.level, x)

    def _want(self, c: Compiled, kind: str, node: Node, where: str) -> None:
        if c.type not in (kind, ANY):
            raise self.fail(f"{where} needs a {kind}, but this is a {c.type}", node)

    def _check_enum(self, column: Compiled, node: Node, other: Compiled) -> None:
        if column.values and other.is_constant:
            words = other.constant if isinstance(other.constant, (list, tuple)) else [other.constant]
            for word in words:
                if isinstance(word, str) and word not in column.values:
                    raise self.fail(f"'{word}' is not one of the values: {', '.join(column.values)}", node)

    # -- functions --
    def _call(self, node: Call) -> Compiled:
        spec = FUNCTIONS.get(node.func)
        if spec is None:
            raise self.fail(f"unknown function '{node.func}'; known: {', '.join(sorted(FUNCTIONS))}", node)
        if self.row_level and node.func not in SAME_DAY_FUNCTIONS | ROW_TIMELINE_FUNCTIONS:
            raise self.fail(f"{node.func}() reads along the course; a row value reads one assessment (its own row) only", node)
        lo, hi = spec.arity
        if not lo <= len(node.args) <= hi:
            count = f"{lo}" if lo == hi else f"{lo} to {hi}"
            noun = "argument" if count == "1" else "arguments"
            raise self.fail(f"{node.func}() takes {count} {noun}, {len(node.args)} given", node)
        out = spec.build(self, node)
        if not spec.causal and out.causal:
            out = replace(out, causal=False, looks_ahead_via=f"{node.func}()")
        return out

    def arg(self, node: Call, i: int, kind: str = ANY) -> Compiled:
        c = self.compile(node.args[i])
        if kind != ANY:
            self._want(c, kind, node.args[i], f"{node.func}()")
        return c

    def constant_arg(self, node: Call, i: int, kind: str = NUM) -> object:
        c = self.arg(node, i, kind)
        if not c.is_constant:
            raise self.fail(f"{node.func}() needs a fixed value or parameter here", node.args[i])
        return c.constant


@dataclass(frozen=True)
class Function:
    arity: tuple[int, int]
    build: Callable[[Compiler, Call], Compiled]
    doc: str
    # False for functions whose value on a day depends on later days
    causal: bool = True


FUNCTIONS: dict[str, Function] = {}

# Functions that look at one day only; every other function reads along the
# course's timeline and must see all of the course's days.
SAME_DAY_FUNCTIONS = frozenset(
    {"recorded", "any_recorded", "coalesce", "greatest", "least", "abs", "round", "floor", "concat", "if", "yes", "captured"}
)
# functions a row value may call besides those: they read earlier rows only
ROW_TIMELINE_FUNCTIONS = frozenset({"hours_held"})


def reads_timeline(node: Node) -> bool:
    """Whether a parsed expression calls a function that reads other days."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Call):
            if n.func not in SAME_DAY_FUNCTIONS:
                return True
            stack.extend(n.args)
        elif isinstance(n, Unary):
            stack.append(n.operand)
        elif isinstance(n, Binary):
            stack.extend((n.left, n.right))
        elif isinstance(n, Membership):
            stack.append(n.operand)
        elif isinstance(n, ListOf):
            stack.extend(n.items)
    return False


def function(name: str, arity: tuple[int, int], doc: str, causal: bool = True):
    def register(build: Callable[[Compiler, Call], Compiled]):
        FUNCTIONS[name] = Function(arity, build, doc, causal)
        return build

    return register


# the function library registers itself on import
from carscore import functions as _functions  # noqa: E402,F401
