"""Plan expressions are data: arithmetic on columns, nothing that reaches Python."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.analysis.expressions import ExpressionError, evaluate, parse

TABLE = pd.DataFrame(
    {"a": [1.0, 4.0, np.nan, 9.0], "b": [2.0, 0.0, 1.0, -1.0], "n": [0, 1, 2, 0]}
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(a + b) / 2", [1.5, 2.0, np.nan, 4.0]),
        ("a ** 2 - 1", [0.0, 15.0, np.nan, 80.0]),
        ("-a + 10 % 3", [0.0, -3.0, np.nan, -8.0]),
        ("sqrt(a)", [1.0, 2.0, np.nan, 3.0]),
        ("log10(abs(b * 50))", [2.0, -np.inf, np.log10(50), np.log10(50)]),
        ("b > 0", [1.0, 0.0, 1.0, 0.0]),
        ("0 < n <= 1", [0.0, 1.0, 0.0, 0.0]),
        ("(b > 0) and (n == 0)", [1.0, 0.0, 0.0, 0.0]),
        ("(b > 0) | (n > 1)", [1.0, 0.0, 1.0, 0.0]),
        ("not (n > 0)", [1.0, 0.0, 0.0, 1.0]),
        ("2.5", [2.5] * 4),
    ],
)
def test_arithmetic_on_columns_is_computed(text, expected):
    np.testing.assert_allclose(evaluate(parse(text), TABLE), expected)


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("a * 0 + @pd.io.common.os.system('touch X')", "'@'"),
        ("a.__class__", "attribute access"),
        ("__import__('os').system('touch X')", "the call"),
        ("a + open('x').read()", "the call \"open('x').read\""),
        ("np.log(a)", "the call 'np.log'"),
        ("a[0]", "indexing"),
        ("(lambda: 1)()", "the call 'lambda: 1'"),
        ("'text'", "'text' is not a number"),
        ("a if b else 1", "'if ... else'"),
        ("[x for x in a]", "a comprehension"),
        ("a in b", "in / is"),
        ("sqrt(a, b)", "sqrt() takes one argument"),
        ("a +", "not a valid expression"),
        ("a; b", "not a valid expression"),
    ],
)
def test_anything_but_arithmetic_is_refused_by_name(text, token):
    with pytest.raises(
        ExpressionError, match="is not allowed|not a valid|takes one|is not a number"
    ) as err:
        parse(text)
    assert token in str(err.value)


def test_a_missing_column_is_named():
    with pytest.raises(ExpressionError, match="column 'c' is not in the table"):
        evaluate(parse("a + c"), TABLE)


def test_columns_read_are_listed_once():
    assert parse("a + sqrt(a) * b > true").columns == ("a", "b")
