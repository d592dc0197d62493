"""string_check (§3.3), text_similarity (§3.4) and multi (§3.8) graded in-process, as documented."""

import math
import os
import subprocess
import sys

import pytest

from openrft.graders import build_grader
from openrft.graders.text_similarity import missing_resource

from .conftest import json_sample, make_sample


def string_check(operation, reference="{{ item.answer }}", input="{{ sample.output_text }}"):
    return build_grader({"type": "string_check", "name": "sc", "input": input, "reference": reference,
                         "operation": operation})


@pytest.mark.parametrize("operation, text, answer, reward", [
    ("eq", "Paris", "Paris", 1.0), ("eq", "paris", "Paris", 0.0),  # exact and case-sensitive
    ("ne", "Paris", "Paris", 0.0), ("ne", "Lyon", "Paris", 1.0),
    ("like", "The capital is Paris.", "Paris", 1.0), ("like", "the capital is paris", "Paris", 0.0),
    ("ilike", "THE CAPITAL IS PARIS", "paris", 1.0), ("ilike", "Lyon", "paris", 0.0),
    ("like", "100%", "%", 1.0), ("like", "abc", "a%c", 0.0),  # substring, not SQL wildcards
])
def test_string_check_operations(operation, text, answer, reward):
    grade = string_check(operation).grade(make_sample(text), {"answer": answer})
    assert grade.reward == reward
    assert grade.error_kind is None
    assert grade.type == "string_check" and grade.name == "sc"


def test_string_check_on_structured_output_and_tools():
    grader = string_check("eq", input="{{sample.output_json.compliant}}", reference="{{item.compliant}}")
    assert grader.grade(json_sample({"compliant": "yes"}), {"compliant": "yes"}).reward == 1.0
    tools = [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
    grader = string_check("eq", input="{{sample.output_tools[0].function.name}}", reference="get_weather")
    assert grader.grade(make_sample("", tools=tools), {}).reward == 1.0


def test_an_unresolved_variable_is_an_invalid_variable_error():
    grade = string_check("eq").grade(make_sample("Paris"), {"no_answer": 1})
    assert grade.reward == 0.0
    assert grade.error_kind == "invalid_variable_error"
    assert grade.errors["invalid_variable_error"] is True
    assert "item.answer" in grade.message


def similarity(metric, **extra):
    return build_grader({"type": "text_similarity", "name": "ts", "input": "{{ sample.output_text }}",
                         "reference": "{{ item.reference }}", "evaluation_metric": metric, **extra})


@pytest.mark.parametrize("metric", ["fuzzy_match", "bleu", "gleu", "rouge_1", "rouge_2", "rouge_3", "rouge_4",
                                    "rouge_5", "rouge_l"])
def test_text_similarity_scores_are_continuous_in_0_1(metric):
    grader = similarity(metric)
    reference = {"reference": "the quick brown fox jumps over the lazy dog"}
    same = grader.grade(make_sample("the quick brown fox jumps over the lazy dog"), reference).reward
    close = grader.grade(make_sample("the quick brown fox jumps over the lazy old cat"), reference).reward
    far = grader.grade(make_sample("completely unrelated words here"), reference).reward
    assert same == pytest.approx(1.0)
    assert 0.0 <= far < close < same
    assert far < 0.35


def test_fuzzy_match_is_rapidfuzz_ratio():
    from rapidfuzz import fuzz

    grade = similarity("fuzzy_match").grade(make_sample("kitten"), {"reference": "sitting"})
    assert grade.reward == pytest.approx(fuzz.ratio("kitten", "sitting") / 100)


def test_pass_threshold_is_reported_not_applied_to_the_reward():
    grade = similarity("fuzzy_match", pass_threshold=0.9).grade(make_sample("kitten"), {"reference": "sitting"})
    assert 0 < grade.reward < 0.9 and grade.scores["passed"] is False


def test_cosine_with_the_packaged_embedding_model():
    if missing_resource("cosine"):
        pytest.skip(missing_resource("cosine"))
    grader = similarity("cosine")
    reference = {"reference": "A cat is sitting on the mat."}
    grades = grader.grade_many([(make_sample("A cat is sitting on the mat."), reference),
                                (make_sample("The kitten sits on the rug."), reference),
                                (make_sample("Quarterly revenue grew by four percent."), reference)])
    same, close, far = (grade.reward for grade in grades)
    assert same == pytest.approx(1.0, abs=1e-4)
    assert far < close < same


def test_meteor_is_nltks_meteor_over_wordnet_3():
    """NLTK's documented example (nltk.translate.meteor_score) gives 0.6944 with WordNet 3.0."""
    if missing_resource("meteor"):
        pytest.skip(missing_resource("meteor"))
    hypothesis = "It is a guide to action which ensures that the military always obeys the commands of the party"
    reference = "It is a guide to action that ensures that the military will forever heed Party commands"
    grade = similarity("meteor").grade(make_sample(hypothesis), {"reference": reference})
    assert grade.error_kind is None and round(grade.reward, 4) == 0.6944
    # synonyms count through WordNet: "sitting" matches "seated", which plain word overlap would not
    close = similarity("meteor").grade(make_sample("the cat is seated"), {"reference": "the cat is sitting"}).reward
    assert close > similarity("meteor").grade(make_sample("the cat is flying"), {"reference": "the cat is sitting"}).reward


def test_meteor_without_wordnet_is_refused_at_validation(tmp_path):
    code = ("import sys; from pathlib import Path; import nltk; nltk.data.path[:] = []\n"
            "import openrft.graders.text_similarity as t; t.DEBIAN_WORDNET = Path('/nonexistent')\n"
            "from openrft.graders import GraderValidationError, parse_grader\n"
            "try:\n"
            "    parse_grader({'type': 'text_similarity', 'input': 'a', 'reference': 'b', 'evaluation_metric': 'meteor'})\n"
            "except GraderValidationError as e:\n"
            "    print(e.field, '|', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "NLTK_DATA"} | {"OPENRFT_HOME": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    field, message = done.stdout.split(" | ", 1)
    assert field == "evaluation_metric" and "apt-get install wordnet-base wordnet-sense-index" in message


def compliance_grader(formula="0.5 * compliant + 0.5 * explanation"):
    """The RFT guide's multi grader (§3.8), with fuzzy_match standing in for cosine."""
    return build_grader({
        "type": "multi", "name": "compliance",
        "graders": {"compliant": {"type": "string_check", "name": "c", "input": "{{sample.output_json.compliant}}",
                                  "reference": "{{item.compliant}}", "operation": "eq"},
                    "explanation": {"type": "text_similarity", "name": "e",
                                    "input": "{{sample.output_json.explanation}}",
                                    "reference": "{{item.explanation}}", "evaluation_metric": "fuzzy_match"}},
        "calculate_output": formula})


ITEM = {"compliant": "yes", "explanation": "A dedicated security team follows strict protocols for handling incidents."}


def test_multi_combines_sub_rewards_with_the_formula():
    answer = json_sample({"compliant": "yes", "explanation": "A dedicated security team handles incidents."})
    grade = compliance_grader().grade(answer, ITEM)
    assert grade.sub_rewards["compliant"] == 1.0
    assert 0.5 < grade.sub_rewards["explanation"] < 1.0
    assert grade.reward == pytest.approx(0.5 * 1.0 + 0.5 * grade.sub_rewards["explanation"])
    assert grade.scores == grade.sub_rewards
    assert grade.type == "multi" and grade.error_kind is None


@pytest.mark.parametrize("formula, expected", [
    ("(compliant + explanation) / 2", lambda c, e: (c + e) / 2),
    ("compliant ^ 2 * explanation", lambda c, e: c ** 2 * e),
    ("min(compliant, explanation, 0.7)", lambda c, e: min(c, e, 0.7)),
    ("max(compliant, explanation)", lambda c, e: max(c, e)),
    ("abs(explanation - 1) + floor(1.7) + ceil(0.2)", lambda c, e: abs(e - 1) + 2),
    ("sqrt(explanation) * exp(0) + log(1)", lambda c, e: math.sqrt(e)),
    ("-explanation^2 + 1", lambda c, e: 1 - e ** 2),
])
def test_formula_grammar(formula, expected):
    answer = json_sample({"compliant": "yes", "explanation": "A security team handles incidents."})
    grade = compliance_grader(formula).grade(answer, ITEM)
    assert grade.reward == pytest.approx(expected(grade.sub_rewards["compliant"], grade.sub_rewards["explanation"]))


def test_multi_reports_sub_grader_errors_and_formula_failures():
    grade = compliance_grader().grade(make_sample("not json"), ITEM)
    assert grade.error_kind == "invalid_variable_error" and grade.reward == 0.0
    grade = compliance_grader("explanation / (compliant - 1)").grade(json_sample({"compliant": "yes",
                                                                                "explanation": "x"}), ITEM)
    assert grade.error_kind == "other_error" and "division by zero" in grade.message


def test_in_process_graders_are_fast():
    grader = string_check("eq")
    pairs = [(make_sample(f"answer {i}"), {"answer": f"answer {i % 3}"}) for i in range(2000)]
    grades = grader.grade_many(pairs)
    assert sum(grade.reward for grade in grades) == sum(1 for i in range(2000) if i % 3 == i)
    assert sum(grade.execution_time for grade in grades) < 2000 * 1e-3  # well under 1 ms a grade
