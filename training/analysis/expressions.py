"""Arithmetic on table columns for analysis plans' ``[derived]`` columns, run as data.

Plans are shared between labs, so an expression is parsed with :mod:`ast` and
checked against a whitelist before anything is computed; nothing in it can reach
Python (no ``eval``, no attribute access, no ``@`` variables, no calls but the
named functions). What is allowed: column names, numbers, ``true``/``false``,
``+ - * / // % **``, comparisons (``< <= > >= == !=``, chained), ``and`` / ``or`` /
``not`` (also ``&`` ``|`` ``~``), parentheses and the functions of :data:`FUNCTIONS`.

>>> import pandas as pd
>>> table = pd.DataFrame({"a": [1.0, 4.0], "b": [3.0, None]})
>>> evaluate(parse("sqrt(a) + b * 2"), table).tolist()
[7.0, nan]
>>> parse("a.__class__")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
ExpressionError: '.' (attribute access) is not allowed: ...
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The functions an expression may call, by name (each takes one column).
FUNCTIONS = {
    "log": np.log,
    "log10": np.log10,
    "log2": np.log2,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "exp": np.exp,
}
_ALLOWED = "use column names, numbers, + - * / ** and comparisons, and " + ", ".join(
    FUNCTIONS
)
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
}
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_NAMED_CONSTANTS = {"true": True, "false": False, "True": True, "False": False}
# What a refused construct is called in the message, by node type.
_REFUSED = {
    ast.Attribute: "'.' (attribute access)",
    ast.Subscript: "'[ ]' (indexing)",
    ast.Lambda: "'lambda'",
    ast.NamedExpr: "':='",
    ast.Starred: "'*' (unpacking)",
    ast.JoinedStr: "an f-string",
    ast.IfExp: "'if ... else'",
    ast.ListComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
}


class ExpressionError(ValueError):
    """An expression that is not plain arithmetic on columns: names the token."""


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its tree and the column names it reads."""

    text: str
    tree: ast.Expression
    columns: tuple[str, ...]


def parse(text: str) -> Expression:
    """Parse and check ``text``; raise :class:`ExpressionError` naming the first
    construct that is not allowed (``@name`` included)."""
    if "@" in text:
        raise ExpressionError(f"'@' (a Python variable) is not allowed: {_ALLOWED}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        token = (text.strip()[exc.offset - 1 :] if exc.offset else text)[:20]
        raise ExpressionError(
            f"not a valid expression near {token!r}: {_ALLOWED}"
        ) from None
    columns: list[str] = []
    for node in ast.walk(tree):
        _check(node, columns)
    return Expression(text, tree, tuple(dict.fromkeys(columns)))


def _check(node: ast.AST, columns: list[str]) -> None:
    ok = (ast.Expression, ast.Load, ast.operator, ast.cmpop, ast.unaryop, ast.boolop)
    if isinstance(node, ok + (ast.BoolOp, ast.Compare)):
        if isinstance(node, ast.operator) and type(node) not in _BINARY:
            raise ExpressionError(
                f"operator {type(node).__name__} is not allowed: {_ALLOWED}"
            )
        if isinstance(node, ast.cmpop) and type(node) not in _COMPARE:
            raise ExpressionError(
                f"comparison {type(node).__name__!r} (in / is) is not allowed: "
                f"{_ALLOWED}"
            )
        return
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        return
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float, bool):
            raise ExpressionError(
                f"the constant {node.value!r} is not a number: {_ALLOWED}"
            )
        return
    if isinstance(node, ast.Name):
        if node.id not in FUNCTIONS and node.id not in _NAMED_CONSTANTS:
            columns.append(node.id)
        return
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            shown = name or ast.unparse(node.func)
            raise ExpressionError(f"the call {shown!r}(...) is not allowed: {_ALLOWED}")
        if len(node.args) != 1 or node.keywords:
            raise ExpressionError(f"{name}() takes one argument: {_ALLOWED}")
        return
    what = _REFUSED.get(type(node), f"{type(node).__name__!r}")
    raise ExpressionError(f"{what} is not allowed: {_ALLOWED}")


def evaluate(expr: Expression, table: pd.DataFrame) -> pd.Series:
    """``expr`` computed on ``table``'s columns, as floats (booleans as 0/1).

    Raises
    ------
    ExpressionError
        When a column the expression names is not in ``table``.
    """
    absent = [c for c in expr.columns if c not in table.columns]
    if absent:
        raise ExpressionError(f"column {absent[0]!r} is not in the table")
    with np.errstate(all="ignore"):
        value = _value(expr.tree.body, table)
    if np.isscalar(value):
        value = np.full(len(table), value)
    return pd.to_numeric(pd.Series(value, index=table.index), errors="coerce").astype(
        float
    )


def _value(node: ast.AST, table: pd.DataFrame):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _NAMED_CONSTANTS:
            return _NAMED_CONSTANTS[node.id]
        return pd.to_numeric(table[node.id], errors="coerce").astype(float)
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left, table), _value(node.right, table)
        if isinstance(node.op, ast.BitAnd | ast.BitOr):
            left, right = _truth(left), _truth(right)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        operand = _value(node.operand, table)
        if isinstance(node.op, ast.Not | ast.Invert):
            return ~_truth(operand) if not np.isscalar(operand) else not operand
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BoolOp):
        values = [_truth(_value(v, table)) for v in node.values]
        combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
        out = values[0]
        for v in values[1:]:
            out = combine(out, v)
        return out
    if isinstance(node, ast.Compare):
        left, out = _value(node.left, table), True
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _value(right_node, table)
            out = out & _COMPARE[type(op)](left, right)
            left = right
        return out
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](_value(node.args[0], table))
    raise ExpressionError(f"cannot evaluate {ast.unparse(node)!r}")  # parse() refused


def _truth(value):
    """A value as booleans: a column of 0/1 or a comparison's result."""
    if np.isscalar(value):
        return bool(value)
    return pd.Series(value).astype(float).fillna(0).astype(bool)
