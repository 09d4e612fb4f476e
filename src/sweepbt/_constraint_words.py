"""Why a constraint (or a ``best(where=...)`` filter) is refused, in plain words.

A leaf module (the standard library only): :func:`sweepbt._params.evaluate_constraint`
parses with Python's own parser, whose messages ("invalid syntax", node names such as
``BinOp``) say little to someone writing ``fast < slow``; these say what to write instead.
"""

from __future__ import annotations

import ast
import re

#: what the allowed syntax is, for the end of a message
ALLOWED = ("names, numbers, + - * / // % **, comparisons (< <= > >= == !=), and, or, not, "
           "parentheses")
#: symbols from other languages, and what a constraint writes instead
_INSTEAD = (("<>", "'!='"), ("&&", "'and'"), ("||", "'or'"), ("===", "'=='"),
            ("=<", "'<='"), ("=>", "'>='"))
#: operators Python knows that a constraint does not take
_OPERATORS = {ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|",
              ast.BitXor: "^", ast.MatMult: "@", ast.Invert: "~", ast.In: "in",
              ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
_OPERATOR_INSTEAD = {"&": "'and'", "|": "'or'", "~": "'not'", "^": "'!=' or 'or'",
                     "is": "'=='", "is not": "'!='"}
#: syntax a constraint does not take, in words
_NODES = {"Call": "a function call", "Attribute": "an attribute (a dot after a name)",
          "Subscript": "indexing with [...]", "List": "a list", "Tuple": "a comma (a tuple)",
          "Set": "a set", "Dict": "a dict", "IfExp": "an if/else expression",
          "Lambda": "lambda", "NamedExpr": "':='", "JoinedStr": "an f-string",
          "Starred": "'*' before a value"}


def syntax_error(expression, exc, what="constraint"):
    """What is wrong with ``expression`` (a ``what``: a constraint, a where= filter),
    which Python's parser refused with ``exc``."""
    text = expression.strip()
    if not text:
        return "it is empty; write a test such as 'fast < slow'"
    if isinstance(exc, (RecursionError, MemoryError)) or "nest" in str(getattr(exc, "msg", "")):
        return "it is nested too deeply"
    for symbol, instead in _INSTEAD:
        if symbol in text:
            return f"'{symbol}' is not an operator here; write {instead}"
    if re.search(r"![^=]|!$", text):
        return "'!' is not an operator here; write 'not' (or '!=' for 'not equal')"
    if re.search(r"(?<![<>=!])=(?!=)", text):
        return "'=' gives a value a name; to compare, write '=='"
    if text.count("(") != text.count(")"):
        more = "(" if text.count("(") > text.count(")") else ")"
        return f"its parentheses do not pair up (one '{more}' too many)"
    end = re.search(r"(\band|\bor|\bnot|\*\*|//|[-+*/%<>]=?|[=!]=)$", text)
    if end:
        return f"it ends with '{end.group(1)}', which needs a value after it"
    offset = getattr(exc, "offset", None)
    where = ""
    if offset and 0 < offset <= len(expression):
        where = f" at character {offset} ({expression[offset - 1:offset + 9]!r})"
    return f"it cannot be read{where}; a {what} is made of {ALLOWED}"


def not_allowed(node, what="constraint"):
    """Why syntax ``node`` (valid Python) is not allowed in a ``what`` (a constraint, a
    where= filter)."""
    op = getattr(node, "op", None)
    ops = getattr(node, "ops", [op])
    symbol = next((_OPERATORS[type(o)] for o in ops if type(o) in _OPERATORS), None)
    if symbol is not None:
        instead = _OPERATOR_INSTEAD.get(symbol)
        return (f"'{symbol}' is not an operator a {what} takes"
                + (f"; write {instead}" if instead else f" ({ALLOWED})"))
    if isinstance(node, ast.Constant):
        return (f"{node.value!r} is not a number; a {what} compares numbers and "
                "parameter names" + ("; a word compares only with a parameter that takes "
                                     "words, e.g. rebalance == 'M'"
                                     if isinstance(node.value, str) else ""))
    syntax = _NODES.get(type(node).__name__, f"'{ast.unparse(node)}'")
    return f"{syntax} is not allowed; a {what} is made of {ALLOWED}"
