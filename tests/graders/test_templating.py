"""Templating, spec §3.2: `{{ item.x }}`, `{{ sample.output_json.a.b }}`, tools, with and without spaces."""

import pytest

from openrft.graders.templating import TemplateError, check_template, render

from .conftest import make_sample

ITEM = {"answer": "Paris", "n": 42, "ok": True, "nested": {"list": [{"x": "deep"}]}, "labels": ["a", "b"]}
TOOLS = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]
SAMPLE = make_sample("The answer is Paris", {"compliant": "yes", "a": {"b": 3}}, TOOLS)


@pytest.mark.parametrize("template, expected", [
    ("{{ item.answer }}", "Paris"),
    ("{{item.answer}}", "Paris"),  # spaces are optional (§3.2)
    ("{{  item.answer}}!", "Paris!"),
    ("{{ sample.output_text }}", "The answer is Paris"),
    ("{{sample.output_json.compliant}}", "yes"),
    ("{{ sample.output_json.a.b }}", "3"),  # numbers are inserted as JSON
    ("{{sample.output_tools[0].function.name}}", "get_weather"),  # the documented tool example
    ("{{ sample.output_tools[0].function.arguments }}", "{\"city\": \"Paris\"}"),
    ("{{ item.nested.list[0].x }}", "deep"),
    ("{{ item.labels }}", "[\"a\", \"b\"]"),  # objects and arrays as JSON
    ("{{ item.ok }}", "true"),
    ("{{ sample.output_json }}", "{\"compliant\": \"yes\", \"a\": {\"b\": 3}}"),  # a whole object (§3.2, AZ)
    ("{{ sample.choices[0].message.content }}", "The answer is Paris"),
    ("n={{item.n}}, answer={{ item.answer }}", "n=42, answer=Paris"),
    ("no variables {not one}", "no variables {not one}"),
    ('{"result": 1}', '{"result": 1}'),  # JSON in a prompt is not a template
])
def test_render(template, expected):
    assert render(template, SAMPLE, ITEM) == expected


@pytest.mark.parametrize("template", [
    "{{ item.missing }}", "{{ item.labels[5] }}", "{{ item.answer.x }}", "{{ sample.output_tools[1].function.name }}",
])
def test_unresolved_variables_raise_template_error(template):
    with pytest.raises(TemplateError) as error:
        render(template, SAMPLE, ITEM)
    assert template in str(error.value)


def test_output_json_is_unresolved_without_a_response_format():
    with pytest.raises(TemplateError, match="output_json"):
        render("{{ sample.output_json.label }}", make_sample("plain text"), {})


def test_unknown_namespace_is_a_validation_problem():
    assert "namespace 'foo'" in check_template("{{ foo.bar }}")
    assert check_template("{{ item.x }} and {{ sample.output_text }}") is None
