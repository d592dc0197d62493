"""`template_variables(spec)`: the item fields a grader reads, for checking a dataset before a run.

Templates give them exactly (`{{ item.labels[0] }}` reads `labels`). For python graders the source
is read (never run): `item["x"]` and `item.get("x")` on the grade function's second parameter, or on
any variable named `item`, count (a `"x" in item` test marks an optional field and does not).
"""

from __future__ import annotations

import ast
from typing import Any

from openrft.graders.spec import parse_grader
from openrft.graders.templating import variables


def template_variables(spec: Any) -> set[str]:
    """The top-level `item` keys that a grader (spec or JSON) reads."""
    spec = parse_grader(spec)
    names: set[str] = set()
    if spec.type in ("string_check", "text_similarity"):
        for template in (spec.input, spec.reference):
            names |= _item_keys(template)
    elif spec.type in ("score_model", "label_model"):
        for message in spec.input:
            parts = message.content if isinstance(message.content, list) else [message.content]
            for part in parts:
                for text in ([part] if isinstance(part, str) else [part.text, part.image_url]):
                    if text:
                        names |= _item_keys(text)
    elif spec.type == "python":
        names |= _python_item_keys(spec.source)
    elif spec.type == "multi":
        for sub in spec.graders.values():
            names |= template_variables(sub)
    return names


def _item_keys(template: str) -> set[str]:
    return {str(variable.steps[0]) for variable in variables(template)
            if variable.namespace == "item" and variable.steps}


def _python_item_keys(source: str) -> set[str]:
    tree = ast.parse(source)
    item_names = {"item"}
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == "grade":
            params = statement.args.posonlyargs + statement.args.args
            if len(params) >= 2:
                item_names.add(params[1].arg)
    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in item_names:
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                keys.add(node.slice.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and isinstance(node.func.value, ast.Name) and node.func.value.id in item_names and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            keys.add(node.args[0].value)
    return keys
