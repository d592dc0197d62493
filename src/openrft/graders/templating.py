"""Grader templates: `{{ item.x }}`, `{{ sample.output_json.a.b }}`, `{{sample.output_tools[0].function.name}}`.

Spec §3.2: two namespaces, `item` (the dataset row) and `sample` (the model's answer); dots and
`[index]` walk into objects and arrays; spaces inside the braces are optional. Strings are inserted
as they are, everything else (numbers, booleans, objects, arrays) as JSON. A variable that does not
resolve raises TemplateError, which graders turn into an `invalid_variable_error` grade.

Templates are compiled once into literal text and variable paths, so rendering is a few dict lookups.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from openrft.errors import InputError

NAMESPACES = ("item", "sample")

# {{ name(.key | [0] | ["key"] | ['key'])* }}; anything else between braces stays literal text.
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_]\w*)"
                       r"((?:\s*\.\s*[^\s.\[\]{}]+|\s*\[\s*(?:-?\d+|\"[^\"]*\"|'[^']*')\s*\])*)\s*\}\}")
_STEP = re.compile(r"\.\s*([^\s.\[\]{}]+)|\[\s*(-?\d+|\"[^\"]*\"|'[^']*')\s*\]")


class TemplateError(InputError):
    """A template variable that does not resolve (an invalid_variable_error)."""


class Variable:
    """One `{{ namespace.path }}` reference: the namespace and the steps (keys and indexes) below it."""

    __slots__ = ("text", "namespace", "steps")

    def __init__(self, text: str, namespace: str, steps: tuple[str | int, ...]):
        self.text, self.namespace, self.steps = text, namespace, steps

    def resolve(self, context: dict[str, Any]) -> Any:
        value = context.get(self.namespace)
        if value is None or self.namespace not in NAMESPACES:
            raise TemplateError(f"{self.text}: unknown namespace {self.namespace!r} (expected item or sample)")
        walked = self.namespace
        for step in self.steps:
            value = _step(value, step, walked, self.text)
            walked += f"[{step}]" if isinstance(step, int) else f".{step}"
        if value is None and self.namespace == "sample" and len(self.steps) == 1:
            raise TemplateError(f"{self.text}: the sample has no {self.steps[0]} (output_json needs a response_format)")
        return value


def _step(value: Any, step: str | int, walked: str, text: str) -> Any:
    if isinstance(value, dict):
        key = str(step)
        if key in value:
            return value[key]
        raise TemplateError(f"{text}: {walked} has no key {key!r}")
    if isinstance(value, (list, tuple)):
        try:
            return value[int(step)]
        except (ValueError, IndexError):
            raise TemplateError(f"{text}: {walked} has no element {step!r} (length {len(value)})") from None
    raise TemplateError(f"{text}: {walked} is {type(value).__name__}, not an object or array")


def _parse_steps(path: str) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    for key, index in _STEP.findall(path):
        if key:
            steps.append(key)
        elif index[0] in "\"'":
            steps.append(index[1:-1])
        else:
            steps.append(int(index))
    return tuple(steps)


@lru_cache(maxsize=4096)
def compile_template(template: str) -> tuple[str | Variable, ...]:
    """The template as a tuple of literal strings and Variables."""
    parts: list[str | Variable] = []
    position = 0
    for match in _VARIABLE.finditer(template):
        if match.start() > position:
            parts.append(template[position:match.start()])
        parts.append(Variable(match.group(0), match.group(1), _parse_steps(match.group(2))))
        position = match.end()
    if position < len(template):
        parts.append(template[position:])
    return tuple(parts)


def variables(template: str) -> list[Variable]:
    return [part for part in compile_template(template) if isinstance(part, Variable)]


def to_text(value: Any) -> str:
    """How a value is inserted into a template: strings as they are, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def render(template: str, sample: dict[str, Any], item: dict[str, Any]) -> str:
    """Fill the template's variables from the sample and item namespaces (raises TemplateError)."""
    parts = compile_template(template)
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    context = {"sample": sample, "item": item}
    return "".join(part if isinstance(part, str) else to_text(part.resolve(context)) for part in parts)


def check_template(template: str) -> str | None:
    """Why a template cannot be valid (a variable outside the item and sample namespaces), or None."""
    for variable in variables(template):
        if variable.namespace not in NAMESPACES:
            return f"{variable.text} names the namespace {variable.namespace!r}; only item and sample exist"
    return None
