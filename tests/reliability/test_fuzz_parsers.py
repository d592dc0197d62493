"""Property-based tests over every parser of user input: each case ends in a result or the module's own error.

JSONL datasets (truncated lines, invalid UTF-8, huge lines, deep nesting), grader JSON, templates,
`calculate_output` formulas and response_format schemas. "Clear error" means the module's documented
error type with a non-empty message naming where (DatasetError problems carry file and line; grader
problems carry the field); anything else (RecursionError, KeyError, a hang) fails the test.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import strategies as st

from openrft.data import DatasetError, check_file, load_rows
from openrft.engines.base import EngineError
from openrft.engines.structured import parse_answer, response_schema
from openrft.graders import Grade, GraderValidationError, build_grader, parse_grader
from openrft.graders.formula import Formula, FormulaError
from openrft.graders.templating import TemplateError, compile_template, render
from tests.reliability.cases import count, no_hang
from tests.reliability.conftest import fuzz

# -- shared strategies ----------------------------------------------------------------------------------
scalars = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=25)
names = st.sampled_from(["a", "b", "f1", "item", "sample", "output_text", "output_json", "answer", "labels", "x_1"])


def deep(depth: int, kind: str) -> str:
    """JSON (or formula) text nested `depth` levels deep."""
    if kind == "array":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth  # unterminated


# -- JSONL --------------------------------------------------------------------------------------------
user_text = st.text(min_size=1, max_size=40).filter(str.strip)
valid_rows = st.builds(lambda text, answer: {"messages": [{"role": "user", "content": text}], "answer": answer},
                       user_text, json_values)


@st.composite
def jsonl_lines(draw) -> bytes:
    kind = draw(st.sampled_from(["row", "truncated", "bytes", "json", "deep", "huge", "empty", "bom"]))
    if kind == "row":
        return json.dumps(draw(valid_rows)).encode()
    if kind == "truncated":
        text = json.dumps(draw(valid_rows)).encode()
        return text[:draw(st.integers(0, len(text) - 1))]
    if kind == "bytes":
        return draw(st.binary(max_size=60)).replace(b"\n", b"")
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "deep":
        return deep(draw(st.integers(1, 50_000)), draw(st.sampled_from(["array", "object", "open"]))).encode()
    if kind == "huge":
        size = draw(st.integers(100_000, 1_500_000))
        return json.dumps({"messages": [{"role": "user", "content": "x" * size}], "answer": "y"}).encode()
    if kind == "bom":
        return b"\xef\xbb\xbf" + json.dumps(draw(valid_rows)).encode()
    return b""


def check_jsonl(tmp_path, lines, final_newline):
    count("jsonl")
    path = tmp_path / "data.jsonl"
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    path.write_bytes(data)
    physical = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    with no_hang(30):
        problems = check_file(path)
        for problem in problems:
            assert problem.file == str(path) and 0 <= problem.line <= physical and problem.reason, problem
        try:
            rows = load_rows(path)
        except DatasetError as exc:
            assert exc.problems == problems and problems
            assert str(path) in str(exc)
            return
    assert not problems
    assert len(rows) == physical and all(isinstance(row, dict) and row["messages"] for row in rows)


test_jsonl_files, test_jsonl_files_slow = fuzz(
    st.lists(jsonl_lines(), max_size=8), st.booleans(), fast=80, slow=1000)(check_jsonl)


def check_valid_jsonl(tmp_path, rows):
    """Well-formed distinct rows are always accepted, unchanged."""
    count("jsonl_valid")
    path = tmp_path / "ok.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    with no_hang(30):
        assert load_rows(path) == rows


test_valid_jsonl_is_accepted, test_valid_jsonl_is_accepted_slow = fuzz(
    st.lists(valid_rows, min_size=1, max_size=6, unique_by=lambda r: json.dumps(r["messages"])))(check_valid_jsonl)


# -- grader JSON --------------------------------------------------------------------------------------------
STRING_CHECK = {"type": "string_check", "name": "s", "input": "{{ sample.output_text }}",
                "reference": "{{ item.answer }}", "operation": "eq"}
SIMILARITY = {"type": "text_similarity", "name": "t", "input": "{{ sample.output_text }}",
              "reference": "{{ item.answer }}", "evaluation_metric": "fuzzy_match"}
PYTHON = {"type": "python", "name": "p", "source": "def grade(sample, item):\n    return 1.0\n"}
SCORE = {"type": "score_model", "name": "m", "model": "default", "range": [0, 1],
         "input": [{"role": "user", "content": "Score {{ sample.output_text }}"}]}
LABEL = {"type": "label_model", "name": "l", "model": "default", "labels": ["a", "b"], "passing_labels": ["a"],
         "input": [{"role": "user", "content": "Label {{ sample.output_text }}"}]}
MULTI = {"type": "multi", "name": "multi", "graders": {"a": STRING_CHECK, "b": SIMILARITY},
         "calculate_output": "0.5 * a + 0.5 * b"}
BASES = [STRING_CHECK, SIMILARITY, PYTHON, SCORE, LABEL, MULTI]
FIELDS = ["type", "name", "input", "reference", "operation", "evaluation_metric", "source", "model", "range",
          "labels", "passing_labels", "graders", "calculate_output", "sampling_params", "pass_threshold", "image_tag"]
interesting_strings = st.sampled_from([
    "{{ item.answer }}", "{{ sample.output_json.a[0] }}", "{{ nope.x }}", "{{", "}}", "{{ item.[ }}",
    "eq", "like", "multi", "python", "string_check", "bleu", "rouge_l", "meteor", "cosine",
    "a + b", "a /", "max(a)", "(" * 3000 + "a" + ")" * 3000, "-" * 5000 + "a", "a ^ " * 2000 + "a",
    "def grade(sample, item):\n    return 2\n", "def grade(x):\n    pass\n", "import os", "(" * 500,
    "\x00", "é" * 300_000])


@st.composite
def grader_json(draw):
    grader = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(0, 4))):
        target = grader
        if grader.get("type") == "multi" and isinstance(grader.get("graders"), dict) and grader["graders"] \
                and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(grader["graders"])))
            if isinstance(grader["graders"][key], dict):
                target = grader["graders"][key]
        action = draw(st.sampled_from(["delete", "random", "string", "base"]))
        field = draw(st.sampled_from(FIELDS))
        if action == "delete":
            target.pop(field, None)
        elif action == "random":
            target[field] = draw(json_values)
        elif action == "string":
            target[field] = draw(interesting_strings)
        else:
            target[field] = json.loads(json.dumps(draw(st.sampled_from(BASES[:2]))))
    return grader


samples = st.fixed_dictionaries({"output_text": st.text(max_size=50), "output_json": json_values,
                                 "output_tools": st.just([])})
items = st.dictionaries(names, json_values, max_size=4)


def check_grader(grader, sample, item):
    count("grader_json")
    with no_hang(60):
        try:
            spec = parse_grader(grader)
        except GraderValidationError as exc:
            assert exc.problems and all(isinstance(f, str) and isinstance(r, str) and r for f, r in exc.problems)
            assert str(exc)
            return
        kinds = {spec.type} | {sub.type for sub in getattr(spec, "graders", {}).values()}
        if kinds & {"python", "score_model", "label_model"}:
            return  # parsed is the property here; running them needs the sandbox / a judge model
        grade = build_grader(spec).grade(sample, item)
    assert isinstance(grade, Grade)
    assert math.isfinite(grade.reward)
    assert grade.error_kind is None or grade.errors.get(grade.error_kind), grade


test_grader_json, test_grader_json_slow = fuzz(grader_json(), samples, items, fast=120, slow=2000)(check_grader)


def check_not_an_object(value):
    count("grader_json")
    if isinstance(value, dict):
        return
    with pytest.raises(GraderValidationError):
        parse_grader(value)


test_grader_not_an_object, test_grader_not_an_object_slow = fuzz(json_values)(check_not_an_object)


# -- templates --------------------------------------------------------------------------------------------
template_pieces = st.sampled_from(["{{", "}}", "{", "}", " ", ".", "[", "]", "0", "-1", "'k'", '"k"', "item",
                                   "sample", "output_text", "output_json", "answer", "x", "é", "\\", "\n"])
templates = st.lists(template_pieces, max_size=30).map("".join) | st.text(max_size=60)


def check_template(template, sample, item):
    count("template")
    with no_hang(10):
        compile_template(template)
        try:
            text = render(template, sample, {"answer": 1, **item})
        except TemplateError as exc:
            assert str(exc)
            return
    assert isinstance(text, str)
    if "{{" not in template:
        assert text == template


test_templates, test_templates_slow = fuzz(templates, samples, items, fast=150, slow=3000)(check_template)


def test_known_template_renders_nested_values():
    count("template")
    assert render("{{ item.a[1].b }}/{{sample.output_text}}", {"output_text": "t"}, {"a": [0, {"b": [1]}]}) == "[1]/t"


# -- calculate_output formulas ----------------------------------------------------------------------------
formula_pieces = st.sampled_from(["a", "b", "1", "0", "2.5", "1e308", ".5", "+", "-", "*", "/", "^", "(", ")",
                                  ",", " ", "min", "max", "abs", "floor", "ceil", "exp", "sqrt", "log", "nope",
                                  "$", "1e", "__import__"])
formula_texts = (st.lists(formula_pieces, max_size=25).map("".join)
                 | st.builds(lambda n, c: c * n + "a", st.integers(1, 20_000), st.sampled_from(["(", "-", "+", "a^"]))
                 | st.text(max_size=40))
sub_rewards = st.fixed_dictionaries({"a": st.floats(-1e6, 1e6), "b": st.floats(-1e6, 1e6)})


def check_formula(text, values):
    count("formula")
    with no_hang(10):
        try:
            formula = Formula(text)
        except FormulaError as exc:
            assert str(exc)
            return
        try:
            result = formula.evaluate({name: values.get(name, 0.0) for name in formula.names})
        except FormulaError as exc:
            assert str(exc)
            return
    assert isinstance(result, float) and math.isfinite(result)


test_formulas, test_formulas_slow = fuzz(formula_texts, sub_rewards, fast=200, slow=4000)(check_formula)


# Well-formed formulas: the value matches Python's arithmetic on the same tree.
leaves = st.sampled_from(["a", "b"]) | st.integers(0, 9).map(str)
trees = st.recursive(leaves, lambda inner: st.tuples(st.sampled_from(["+", "-", "*", "min", "max"]), inner, inner),
                     max_leaves=12)


def _text(tree) -> str:
    if isinstance(tree, str):
        return tree
    op, left, right = tree
    return f"{op}({_text(left)}, {_text(right)})" if op in ("min", "max") else f"({_text(left)} {op} {_text(right)})"


def _value(tree, values) -> float:
    if isinstance(tree, str):
        return values[tree] if tree in values else float(tree)
    op, left, right = tree
    x, y = _value(left, values), _value(right, values)
    return {"+": x + y, "-": x - y, "*": x * y, "min": min(x, y), "max": max(x, y)}[op]


def check_formula_value(tree, values):
    count("formula")
    assert Formula(_text(tree)).evaluate(values) == pytest.approx(_value(tree, values))


test_formula_values, test_formula_values_slow = fuzz(
    trees, st.fixed_dictionaries({"a": st.floats(-10, 10), "b": st.floats(-10, 10)}))(check_formula_value)


# -- response_format schemas -----------------------------------------------------------------------------
schema_keys = st.sampled_from(["type", "properties", "required", "items", "enum", "additionalProperties",
                               "minItems", "maxLength", "anyOf", "$ref", "$defs", "pattern", "const"])
schemas = st.recursive(
    st.sampled_from([{}, {"type": "string"}, {"type": "integer"}, {"type": "nonsense"}, {"enum": []},
                     {"pattern": "("}, {"$ref": "#/nowhere"}, {"minItems": -1}]),
    lambda inner: st.dictionaries(schema_keys, inner | json_values, max_size=4)
    | st.builds(lambda p: {"type": "object", "properties": p, "required": sorted(p)},
                st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=15)


@st.composite
def response_formats(draw):
    kind = draw(st.sampled_from(["json_schema", "azure", "json_object", "text", "random", "deep"]))
    if kind == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "a", "schema": draw(schemas), "strict": True}}
    if kind == "azure":
        return {"type": "json_schema", "name": "a", "schema": draw(schemas)}
    if kind in ("json_object", "text"):
        return {"type": kind}
    if kind == "deep":
        schema: dict = {"type": "string"}
        for _ in range(draw(st.integers(1, 3_000))):
            schema = {"type": "object", "properties": {"a": schema}}
        return {"type": "json_schema", "json_schema": {"name": "deep", "schema": schema}}
    return draw(json_values)


def check_response_format(response_format, answer):
    count("response_format")
    with no_hang(30):
        try:
            schema = response_schema(response_format)
        except EngineError as exc:
            assert str(exc).startswith("response_format")
            return
        value, error = parse_answer(answer, schema)
    assert schema is None or isinstance(schema, dict)
    assert error is None or isinstance(error, str)
    assert value is None or error is None


answers = st.text(max_size=40) | json_values.map(json.dumps) | st.integers(1, 100_000).map(lambda n: "[" * n)
test_response_formats, test_response_formats_slow = fuzz(response_formats(), answers, fast=100, slow=2000)(
    check_response_format)
