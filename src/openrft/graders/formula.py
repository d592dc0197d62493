"""The `calculate_output` formula of a multi grader, parsed and evaluated without `eval` (spec §3.8).

Grammar: numbers, sub-grader names, parentheses, `+ - * /`, `^` (power, right-associative, above
unary minus: `-a^2` is `-(a^2)`), and the functions `min max` (one or more arguments), `abs floor
ceil exp sqrt log` (one argument; `log` is the natural logarithm). A formula is parsed once into a
small tree of tuples; evaluation walks it with the sub-rewards. Numbers and names are ASCII only; a
result that is not finite or lies outside [-MAX_ABS_REWARD, MAX_ABS_REWARD] is a `FormulaError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Union

from openrft.errors import InputError

# name: (function, number of arguments; None for one or more)
FUNCTIONS: dict[str, tuple[Callable[..., float], int | None]] = {
    "min": (lambda *values: min(values), None), "max": (lambda *values: max(values), None),
    "abs": (abs, 1), "floor": (math.floor, 1), "ceil": (math.ceil, 1),
    "exp": (math.exp, 1), "sqrt": (math.sqrt, 1), "log": (math.log, 1),
}
MAX_ABS_REWARD = 1e6  # a reward (a formula's, a python grader's) outside [-1e6, 1e6] is an error
# ASCII only: `\d` and `\w` would otherwise take any Unicode digit (`a + ١` was 2.0)
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_]\w*)|(\S))", re.ASCII)

Node = Union[float, str, tuple]


class FormulaError(InputError, ValueError):
    """A formula that does not parse (formula_parse_error) or cannot be evaluated."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only trailing spaces are left
            break
        number, name, symbol = match.groups()
        if number is not None:
            tokens.append(("number", number))
        elif name is not None:
            tokens.append(("name", name))
        elif symbol in "+-*/^(),":
            tokens.append(("op", symbol))
        else:
            raise FormulaError(f"unexpected character {symbol!r} at position {match.start(3) + 1}")
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, symbol: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FormulaError(f"unexpected end of formula{f', expected {symbol!r}' if symbol else ''}")
        if symbol is not None and token != ("op", symbol):
            raise FormulaError(f"expected {symbol!r}, found {token[1]!r}")
        self.index += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise FormulaError("the formula is empty")
        node = self.sum()
        token = self.peek()
        if token is not None:
            raise FormulaError(f"unexpected {token[1]!r} after a complete expression")
        return node

    def sum(self) -> Node:
        node = self.product()
        while self.peek() in (("op", "+"), ("op", "-")):
            node = (self.take()[1], node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.peek() in (("op", "*"), ("op", "/")):
            node = (self.take()[1], node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() in (("op", "-"), ("op", "+")):
            sign = self.take()[1]
            operand = self.unary()
            return ("neg", operand) if sign == "-" else operand
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.peek() == ("op", "^"):
            self.take()
            return ("^", base, self.unary())  # right-associative: a^b^c = a^(b^c)
        return base

    def atom(self) -> Node:
        kind, value = self.take()
        if kind == "number":
            return float(value)
        if kind == "name":
            if self.peek() == ("op", "("):
                if value not in FUNCTIONS:
                    raise FormulaError(f"unknown function {value!r} (known: {', '.join(FUNCTIONS)})")
                self.take("(")
                arguments = [self.sum()]
                while self.peek() == ("op", ","):
                    self.take()
                    arguments.append(self.sum())
                self.take(")")
                arity = FUNCTIONS[value][1]
                if arity is not None and len(arguments) != arity:
                    raise FormulaError(f"{value}() takes {arity} argument, got {len(arguments)}")
                return ("call", value, tuple(arguments))
            return value
        if value == "(":
            node = self.sum()
            self.take(")")
            return node
        raise FormulaError(f"unexpected {value!r}")


class Formula:
    """A parsed formula: `Formula("0.5 * a + 0.5 * b").evaluate({"a": 1, "b": 0}) == 0.5`."""

    def __init__(self, text: str):
        self.text = text
        try:
            self.tree = _Parser(text).parse()
            self.names = frozenset(_names(self.tree))
        except RecursionError:
            raise FormulaError("the formula is nested too deeply") from None

    def evaluate(self, values: dict[str, float]) -> float:
        try:
            result = _evaluate(self.tree, values)
        except (ZeroDivisionError, ValueError, OverflowError, RecursionError) as exc:
            raise FormulaError(f"{self.text!r} cannot be evaluated: {exc}") from None
        if not math.isfinite(result):
            raise FormulaError(f"{self.text!r} evaluates to {result}")
        if abs(result) > MAX_ABS_REWARD:
            raise FormulaError(f"{self.text!r} evaluates to {result:g}, "
                               f"outside [-{MAX_ABS_REWARD:g}, {MAX_ABS_REWARD:g}]")
        return result


def _names(node: Node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, tuple):
        if node[0] == "call":
            return [name for argument in node[2] for name in _names(argument)]
        return [name for child in node[1:] for name in _names(child)]
    return []


def _evaluate(node: Node, values: dict[str, float]) -> float:
    if isinstance(node, float):
        return node
    if isinstance(node, str):
        if node not in values:
            raise ValueError(f"no sub-grader named {node!r}")
        return float(values[node])
    operator = node[0]
    if operator == "call":
        function, _ = FUNCTIONS[node[1]]
        return float(function(*(_evaluate(argument, values) for argument in node[2])))
    if operator == "neg":
        return -_evaluate(node[1], values)
    left, right = _evaluate(node[1], values), _evaluate(node[2], values)
    if operator == "+":
        return left + right
    if operator == "-":
        return left - right
    if operator == "*":
        return left * right
    if operator == "/":
        return left / right
    result = left ** right
    if isinstance(result, complex):
        raise ValueError(f"{left} ^ {right} is not a real number")
    return float(result)
