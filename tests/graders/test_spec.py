"""Grader JSON validation (spec §3.3–3.9): everything OpenAI accepts passes, bad graders name the field."""

import pytest

from openrft.graders import GraderValidationError, parse_grader, ready_grader, ready_names, template_variables

STRING_CHECK = {"type": "string_check", "name": "match", "input": "{{ sample.output_text }}",
                "reference": "{{ item.answer }}", "operation": "eq"}

# Graders as OpenAI's docs write them (§3.3–3.8), including the doc examples that leave out `name`.
VALID = [
    STRING_CHECK,
    {"type": "string_check", "name": "x", "input": "{{sample.output_json.compliant}}", "reference": "yes",
     "operation": "ilike"},
    {"type": "text_similarity", "name": "ts", "input": "{{sample.output_text}}", "reference": "{{item.reference}}",
     "evaluation_metric": "fuzzy_match", "pass_threshold": 0.8},
    *[{"type": "text_similarity", "name": m, "input": "{{sample.output_text}}", "reference": "r",
       "evaluation_metric": m} for m in ("bleu", "gleu", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5",
                                         "rouge_l", "cosine")],
    {"type": "python", "source": "def grade(sample, item) -> float:\n    return 1.0\n"},  # GRD: no name
    {"type": "python", "name": "p", "source": "def grade(sample, item):\n    return 1.0\n", "image_tag": "2025-05-08"},
    {"type": "score_model", "name": "judge", "model": "gpt-4o-2024-08-06",
     "input": [{"role": "system", "content": "Score 0-1."},
               {"role": "user", "content": "Reference: {{item.reference_answer}}\nAnswer: {{sample.output_text}}"}],
     "range": [0, 1], "sampling_params": {"temperature": 0, "max_completions_tokens": 512, "seed": 3}},
    {"type": "score_model", "name": "judge", "model": "o3-mini-2025-01-31",
     "input": [{"role": "user", "type": "message", "content": {"type": "input_text", "text": "{{item.q}}"}}],
     "sampling_params": {"max_tokens": 100, "reasoning_effort": "low"}},
    {"type": "label_model", "name": "sentiment", "model": "gpt-4o-mini-2024-07-18",
     "input": [{"role": "user", "content": [{"type": "input_text", "text": "Classify: {{sample.output_text}}"}]}],
     "labels": ["positive", "neutral", "negative"], "passing_labels": ["positive", "neutral"]},
    {"type": "multi", "name": "compliance",  # the RFT guide's example (§3.8)
     "graders": {"compliant": {"type": "string_check", "name": "c", "input": "{{sample.output_json.compliant}}",
                               "reference": "{{item.compliant}}", "operation": "eq"},
                 "explanation": {"type": "text_similarity", "name": "e", "input": "{{sample.output_json.explanation}}",
                                 "reference": "{{item.explanation}}", "evaluation_metric": "cosine",
                                 "pass_threshold": 0.5}},
     "calculate_output": "0.5 * compliant + 0.5 * explanation"},
]


@pytest.mark.parametrize("grader", VALID, ids=lambda g: f"{g['type']}-{g.get('evaluation_metric', g.get('name', ''))}")
def test_openai_graders_validate(grader):
    spec = parse_grader(grader)
    assert spec.type == grader["type"]
    assert spec.name == grader.get("name", grader["type"])


@pytest.mark.parametrize("grader, field, words", [
    ({**STRING_CHECK, "operation": "neq"}, "operation", "'eq', 'ne', 'like' or 'ilike'"),  # the guide's typo (§3.3)
    ({**STRING_CHECK, "operation": None}, "operation", "must be one of"),
    ({k: v for k, v in STRING_CHECK.items() if k != "reference"}, "reference", "missing"),
    ({**STRING_CHECK, "colour": "red"}, "colour", "unknown field"),
    ({**STRING_CHECK, "input": "{{ answer.x }}"}, "input", "namespace"),
    ({"type": "string_checker"}, "type", "unknown grader type"),
    ({"name": "x"}, "type", "missing"),
    ({"type": "text_similarity", "input": "a", "reference": "b", "evaluation_metric": "rouge_6"},
     "evaluation_metric", "rouge_l"),
    ({"type": "python", "source": "def grade(sample):\n    return 1\n"}, "source", "exactly two arguments"),
    ({"type": "python", "source": "def grade(a, b, c):\n    return 1\n"}, "source", "exactly two arguments"),
    ({"type": "python", "source": "def score(sample, item):\n    return 1\n"}, "source", "grade(sample, item)"),
    ({"type": "python", "source": "def grade(sample, item)\n    return 1\n"}, "source", "syntax error at line 1"),
    ({"type": "python", "source": "def grade(s, i):\n    return 1\n" + "#" * (1 << 20)}, "source", "256 kB"),
    ({"type": "score_model", "model": "m", "input": [{"role": "user", "content": "x"}], "range": [1, 0]},
     "range", "min < max"),
    ({"type": "score_model", "model": "m", "input": [{"role": "judge", "content": "x"}]}, "input.0.role", "user"),
    ({"type": "score_model", "model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
     "input.0.content.0.text", "required"),
    ({"type": "label_model", "model": "m", "input": [{"role": "user", "content": "x"}], "labels": ["a"],
      "passing_labels": ["b"]}, "passing_labels", "not in labels"),
    ({"type": "multi", "graders": {"a": STRING_CHECK}, "calculate_output": "a +"}, "calculate_output", "parse"),
    ({"type": "multi", "graders": {"a": STRING_CHECK}, "calculate_output": "a + b"}, "calculate_output", "'b'"),
    ({"type": "multi", "graders": {"a": STRING_CHECK}, "calculate_output": "pow(a, 2)"}, "calculate_output",
     "unknown function"),
    ({"type": "multi", "graders": {"a": {**STRING_CHECK, "operation": "is"}}, "calculate_output": "a"},
     "graders.a.operation", "must be one of"),
    ({"type": "multi", "graders": {"m": {"type": "multi", "graders": {}, "calculate_output": "1"}},
      "calculate_output": "m"}, "graders.m.type", "cannot be nested"),  # §3.8: no multi in multi
    ({"type": "multi", "graders": STRING_CHECK, "calculate_output": "match"}, "graders",
     "Invalid type for 'graders.input'"),  # §3.8, J647: a single grader where a map belongs
])
def test_bad_graders_are_rejected_naming_the_field(grader, field, words):
    with pytest.raises(GraderValidationError) as error:
        parse_grader(grader)
    assert error.value.field == field
    assert words in str(error.value)
    assert str(error.value).startswith(field)


def test_a_grader_that_is_not_an_object():
    with pytest.raises(GraderValidationError, match="JSON object"):
        parse_grader(["string_check"])


def test_ready_graders_are_valid_openai_json():
    assert {"multilabel_f1", "gsm8k_numeric"} <= set(ready_names())
    for name in ready_names():
        spec = parse_grader(ready_grader(name))
        assert spec.to_json()["type"] in ("multi", "python")
    assert ready_grader("multilabel_f1") is not ready_grader("multilabel_f1")  # fresh copies
    with pytest.raises(KeyError, match="multilabel_f1"):
        ready_grader("nope")


def test_template_variables_name_the_item_fields_read():
    assert template_variables(STRING_CHECK) == {"answer"}
    assert template_variables(VALID[-1]) == {"compliant", "explanation"}
    assert template_variables(VALID[-2]) == set()  # label_model reads only the sample
    assert template_variables({"type": "text_similarity", "input": "{{ item.a.b[0] }}", "reference": "{{item.c}}",
                               "evaluation_metric": "bleu"}) == {"a", "c"}
    assert template_variables(ready_grader("multilabel_f1")) == {"labels"}
    assert template_variables(ready_grader("gsm8k_numeric")) == {"answer"}
    source = "def grade(s, row):\n    return row['gold'] == s['output_text'] or row.get('alt') or 'opt' in row\n"
    assert template_variables({"type": "python", "source": source}) == {"gold", "alt"}
