"""The Grade: what a grader says about one sample, in the shape of OpenAI's run-grader response.

Errors are values: a grader that cannot grade a sample returns a Grade with reward 0 and one of
OpenAI's error flags set (spec §3.10), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# OpenAI's `metadata.errors` object, its keys in the order of the run-grader response (spec §3.10): the error
# flags (booleans) and, for three of them, a details key (a string or null). The one definition of these names.
ERROR_KEYS = (
    "formula_parse_error", "sample_parse_error", "truncated_observation_error", "unresponsive_reward_error",
    "invalid_variable_error", "other_error", "python_grader_server_error", "python_grader_server_error_type",
    "python_grader_runtime_error", "python_grader_runtime_error_details", "model_grader_server_error",
    "model_grader_refusal_error", "model_grader_parse_error", "model_grader_server_error_details",
)
ERROR_DETAILS = {  # the flags whose details have a key of their own
    "python_grader_server_error": "python_grader_server_error_type",
    "python_grader_runtime_error": "python_grader_runtime_error_details",
    "model_grader_server_error": "model_grader_server_error_details",
}
ERROR_FLAGS = tuple(key for key in ERROR_KEYS if key not in ERROR_DETAILS.values())

# The flags of multi-turn rollouts (an observation cut, a reward that did not answer): openrft samples one turn, so
# no grade sets them; they stay in the run-grader response, where OpenAI always sends them.
MULTI_TURN_ERRORS = ("truncated_observation_error", "unresponsive_reward_error")
# The flags a metrics event counts per grader (`data.errors.graders[]`: `train_<flag>_count`, `valid_<flag>_mean`,
# openai-rft-api.md §1.8): every flag a grade can carry here.
METRIC_ERROR_FLAGS = tuple(flag for flag in ERROR_FLAGS if flag not in MULTI_TURN_ERRORS)

# Failures of the grading machinery (sandbox crash or timeout, judge server down), as opposed to a grader that
# scored the answer 0 or an answer that did not parse: the trainer leaves such samples out of the update.
INFRASTRUCTURE_ERRORS = ("python_grader_server_error", "model_grader_server_error")

_NO_ERRORS: dict[str, bool | str | None] = {key: (None if key in ERROR_DETAILS.values() else False)
                                            for key in ERROR_KEYS}


def no_errors() -> dict[str, bool | str | None]:
    """OpenAI's errors object with nothing set."""
    return _NO_ERRORS.copy()


@dataclass
class Grade:
    reward: float
    name: str = ""
    type: str = ""
    sub_rewards: dict[str, float] = field(default_factory=dict)
    errors: dict[str, bool | str | None] = field(default_factory=no_errors)
    execution_time: float = 0.0
    scores: dict[str, Any] = field(default_factory=dict)
    token_usage: dict[str, dict[str, int]] = field(default_factory=dict)  # judge model -> usage
    sampled_model_name: str | None = None
    message: str | None = None  # a human explanation of the error, when there is one

    @classmethod
    def failed(cls, kind: str, message: str, *, name: str = "", type: str = "", detail: str | None = None,
               **fields: Any) -> "Grade":
        """A reward-0 grade with the error flag `kind` set (and its details key, if it has one)."""
        if kind not in ERROR_FLAGS:
            raise ValueError(f"unknown error flag {kind!r}")
        grade = cls(reward=0.0, name=name, type=type, message=message, **fields)
        grade.errors[kind] = True
        if kind in ERROR_DETAILS:
            grade.errors[ERROR_DETAILS[kind]] = detail if detail is not None else message
        return grade

    @property
    def error_kind(self) -> str | None:
        """The first error flag set, or None for a clean grade."""
        for key in ERROR_FLAGS:
            if self.errors.get(key):
                return key
        return None

    @property
    def infrastructure_failed(self) -> bool:
        """The grade failed for an infrastructure reason (INFRASTRUCTURE_ERRORS): its 0 says nothing of the answer."""
        return any(self.errors.get(key) for key in INFRASTRUCTURE_ERRORS)

    def merge_errors(self, other: "Grade") -> None:
        """Take over the flags (and first details) set in another grade, e.g. a multi grader's sub-grade."""
        for key, value in other.errors.items():
            if value and not self.errors.get(key):
                self.errors[key] = value
        if other.message and not self.message:
            self.message = other.message
        for model, usage in other.token_usage.items():
            add_usage(self.token_usage.setdefault(model, {}), usage)

    def total_token_usage(self) -> dict[str, int] | None:
        if not self.token_usage:
            return None
        total: dict[str, int] = {}
        for usage in self.token_usage.values():
            add_usage(total, usage)
        return total

    def to_run_response(self) -> dict[str, Any]:
        """OpenAI's run-grader response (spec §3.10); openrft's extra key is `metadata.openrft_error`."""
        metadata = {
            "name": self.name,
            "type": self.type,
            "errors": dict(self.errors),
            "execution_time": round(self.execution_time, 6),
            "scores": dict(self.scores),
            "token_usage": self.total_token_usage(),
            "sampled_model_name": self.sampled_model_name,
        }
        if self.message:
            metadata["openrft_error"] = self.message
        return {
            "reward": self.reward,
            "metadata": metadata,
            "sub_rewards": dict(self.sub_rewards),
            "model_grader_token_usage_per_model": {model: dict(usage) for model, usage in self.token_usage.items()},
        }


def add_usage(total: dict[str, int], usage: dict[str, int]) -> None:
    for key in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens"):
        total[key] = total.get(key, 0) + int(usage.get(key, 0) or 0)
