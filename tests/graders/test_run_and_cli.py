"""The run / validate endpoints' logic and `openrft grade` (spec §3.10)."""

import json

import pytest
from typer.testing import CliRunner

from openrft.cli import app
from openrft.graders import ERROR_FLAGS, GraderValidationError, run_grader, validate_grader

GRADER = {"type": "string_check", "name": "capital", "input": "{{ sample.output_text }}",
          "reference": "{{ item.answer }}", "operation": "eq"}
RESPONSE_ERROR_KEYS = [  # §3.10, in OpenAI's order
    "formula_parse_error", "sample_parse_error", "truncated_observation_error", "unresponsive_reward_error",
    "invalid_variable_error", "other_error", "python_grader_server_error", "python_grader_server_error_type",
    "python_grader_runtime_error", "python_grader_runtime_error_details", "model_grader_server_error",
    "model_grader_refusal_error", "model_grader_parse_error", "model_grader_server_error_details"]


def test_run_response_has_openai_shape():
    response = run_grader({"grader": GRADER, "model_sample": "Paris", "item": {"answer": "Paris"}})
    assert response["reward"] == 1.0
    assert set(response) == {"reward", "metadata", "sub_rewards", "model_grader_token_usage_per_model"}
    metadata = response["metadata"]
    assert {"name", "type", "errors", "execution_time", "scores", "token_usage", "sampled_model_name"} <= set(metadata)
    assert (metadata["name"], metadata["type"]) == ("capital", "string_check")
    assert list(metadata["errors"]) == RESPONSE_ERROR_KEYS
    assert not any(metadata["errors"][flag] for flag in ERROR_FLAGS)
    assert isinstance(metadata["execution_time"], float)


def test_model_sample_json_fills_output_json():
    grader = {**GRADER, "input": "{{ sample.output_json.city }}"}
    assert run_grader({"grader": grader, "model_sample": '{"city": "Paris"}', "item": {"answer": "Paris"}})["reward"] == 1
    response = run_grader({"grader": grader, "model_sample": "Paris", "item": {"answer": "Paris"}})
    assert response["metadata"]["errors"]["invalid_variable_error"] is True


def test_reference_answer_of_old_sdks():
    grader = {**GRADER, "reference": "{{ item.reference_answer }}"}
    assert run_grader({"grader": grader, "model_sample": "Paris", "reference_answer": "Paris"})["reward"] == 1.0


def test_tool_calls_through_a_sample_object():
    tools = [{"id": "1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
    grader = {**GRADER, "input": "{{ sample.output_tools[0].function.name }}"}
    response = run_grader({"grader": grader, "model_sample": {"output_text": "", "output_tools": tools},
                           "item": {"answer": "get_weather"}})
    assert response["reward"] == 1.0


@pytest.mark.parametrize("request_body, field", [
    ({"grader": {**GRADER, "operation": "equals"}, "model_sample": "x"}, "grader.operation"),
    ({"model_sample": "x"}, "grader"),
    ({"grader": GRADER}, "model_sample"),
    ({"grader": GRADER, "model_sample": "x", "item": [1]}, "item"),
    ({"grader": GRADER, "model_sample": "x", "extra": 1}, "extra"),
])
def test_bad_run_requests_name_the_field(request_body, field):
    with pytest.raises(GraderValidationError) as error:
        run_grader(request_body)
    assert error.value.field == field


def test_validate():
    assert validate_grader({"grader": GRADER}) == {"grader": GRADER}
    with pytest.raises(GraderValidationError, match="grader.type"):
        validate_grader({"grader": {"type": "regex"}})


def test_cli_grade_request_file_and_stdin(tmp_path):
    request = {"grader": GRADER, "model_sample": "Lyon", "item": {"answer": "Paris"}}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    runner = CliRunner()
    result = runner.invoke(app, ["grade", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reward"] == 0.0
    result = runner.invoke(app, ["grade", "-"], input=json.dumps({**request, "model_sample": "Paris"}))
    assert result.exit_code == 0 and json.loads(result.output)["reward"] == 1.0


def test_cli_validate(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(GRADER))
    bad.write_text(json.dumps({**GRADER, "operation": "neq"}))
    runner = CliRunner()
    result = runner.invoke(app, ["grade", "--validate", str(good)])
    assert result.exit_code == 0 and json.loads(result.output) == {"grader": GRADER}
    result = runner.invoke(app, ["grade", "--validate", str(bad)])
    assert result.exit_code == 2
    error = json.loads(result.output)["error"]
    assert error["param"] == "grader.operation" and "neq" in error["message"]


def test_cli_ready_and_bad_files(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["grade", "--ready", "gsm8k_numeric"])
    assert result.exit_code == 0 and json.loads(result.output)["type"] == "python"
    broken = tmp_path / "broken.json"
    broken.write_text("{\n  \"grader\": ,\n}")
    result = runner.invoke(app, ["grade", str(broken)])
    assert result.exit_code == 2 and "line 2" in unboxed(result.output)
    huge = tmp_path / "huge.json"  # valid JSON that Python refuses to read (an int of more than 4,300 digits)
    huge.write_text('{"grader": {"type": "string_check"}, "item": {"n": ' + "9" * 5000 + "}}")
    result = runner.invoke(app, ["grade", str(huge)])
    assert result.exit_code == 2 and "cannot read this JSON" in unboxed(result.output), result.output


def unboxed(output: str) -> str:
    """The text of a CLI message without rich's box and its line wrapping (which depends on the terminal width)."""
    import re

    return " ".join(re.sub(r"[\u2500-\u257f]", " ", output).split())


def test_example_request_runs(pool):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "graders" / "request_multilabel_f1.json"
    response = run_grader(json.loads(example.read_text()), sandbox=pool)
    assert response["metadata"]["errors"]["python_grader_runtime_error"] is False
    assert set(response["sub_rewards"]) == {"f1", "precision", "recall"}
