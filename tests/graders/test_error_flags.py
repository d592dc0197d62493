"""OpenAI's error flags, defined once (graders/grade.py): the run-grader response's keys and the metrics' counters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import openrft
from openrft.graders.grade import ERROR_DETAILS, ERROR_FLAGS, METRIC_ERROR_FLAGS, Grade, no_errors

# `metadata.errors` of OpenAI's run-grader response, in its order (../shared/docs/openai-rft-api.md §3.10)
OPENAI_ERRORS = {
    "formula_parse_error": False, "sample_parse_error": False, "truncated_observation_error": False,
    "unresponsive_reward_error": False, "invalid_variable_error": False, "other_error": False,
    "python_grader_server_error": False, "python_grader_server_error_type": None,
    "python_grader_runtime_error": False, "python_grader_runtime_error_details": None,
    "model_grader_server_error": False, "model_grader_refusal_error": False,
    "model_grader_parse_error": False, "model_grader_server_error_details": None,
}


def test_a_clean_grade_carries_openai_s_errors_object_in_its_order():
    assert list(no_errors().items()) == list(OPENAI_ERRORS.items())
    assert ERROR_FLAGS == tuple(key for key, value in OPENAI_ERRORS.items() if value is False)


@pytest.mark.parametrize("flag", ERROR_FLAGS)
def test_a_failed_grade_sets_its_flag_and_its_details(flag):
    grade = Grade.failed(flag, "why")
    assert grade.reward == 0.0 and grade.error_kind == flag
    assert [key for key, value in grade.errors.items() if value] == [flag] + ([ERROR_DETAILS[flag]]
                                                                               if flag in ERROR_DETAILS else [])


def test_every_flag_openrft_sets_is_counted_in_the_metrics_events():
    source = Path(openrft.__file__).parent
    # Grade.failed("flag", ...) and grade.errors["flag"] = True
    setting = re.compile(r"""failed\(\s*["'](\w+)["']|errors\[["'](\w+)["']\]\s*=\s*True""")
    set_somewhere = {first or second for path in source.rglob("*.py")
                     for first, second in setting.findall(path.read_text())}
    assert {"invalid_variable_error", "python_grader_server_error", "other_error"} <= set_somewhere  # the scan works
    assert set_somewhere <= set(METRIC_ERROR_FLAGS)
    assert "truncated_observation_error" not in METRIC_ERROR_FLAGS  # multi-turn only: no openrft grade sets it
