"""The engine protocol: chat prompts in, `n` Samples per prompt out.

A Sample carries everything the graders and the trainer need: the completion's token ids and the
log-probability of each sampled token under the sampling policy, the answer text (and its parsed JSON
when a response_format was given), the reasoning text kept apart from the answer, token counts,
finish reason and timing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from openrft.errors import RuntimeFailure

Messages = list[dict[str, Any]]  # one chat prompt: [{"role": ..., "content": ...}, ...]

REASONING_EFFORTS = ("low", "medium", "high")  # the engine's levels, each with its token budget (reasoning.py)
# OpenAI's reasoning_effort values (jobs, chat completions, responses, graders) as the engine's levels: the one
# table that reads them (`reasoning.effort_level`). default / none: no reasoning segment; minimal: low; xhigh and
# max: high, the largest budget.
ReasoningEffort = Literal["default", "none", "minimal", "low", "medium", "high", "xhigh", "max"]
EFFORT_LEVELS: dict[str, str | None] = {"default": None, "none": None, "minimal": "low", "low": "low",
                                        "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
assert set(get_args(ReasoningEffort)) == set(EFFORT_LEVELS)


@dataclass
class SamplingParams:
    n: int = 1  # samples per prompt
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256  # new tokens per sample, reasoning included
    seed: int | None = None
    response_format: dict | None = None  # OpenAI's {"type": "json_schema", "json_schema": {...}} or None
    reasoning_effort: str | None = None  # None (no reasoning segment) or one of OpenAI's values (EFFORT_LEVELS)
    min_tokens: int = 0  # end-of-sequence is suppressed before this many new tokens (as vLLM's min_tokens;
    # benchmarks use it to fix the length; ignored when a grammar constrains the completion)
    # OpenAI function tools offered to every prompt of the call, and how they may be used (engines/tools.py):
    tools: list[dict] | None = None  # [{"type": "function", "function": {"name", "description", "parameters"}}]
    tool_choice: str | dict | None = None  # None / "auto", "none", "required", {"type": "function", ...}
    parallel_tool_calls: bool | None = None  # None: true, as OpenAI


@dataclass
class Sample:
    prompt_index: int  # which prompt of the batch this sample answers
    output_text: str  # the answer, without the reasoning segment
    output_json: Any = None  # the parsed answer when a json_schema response_format was given
    # the answer's tool calls in OpenAI's shape: [{"id", "type": "function", "function": {"name", "arguments"}}]
    # (output_text is then the text outside the calls, often "")
    output_tools: list[dict] = field(default_factory=list)
    reasoning_text: str = ""
    token_ids: list[int] = field(default_factory=list)  # completion tokens (reasoning + answer)
    logprobs: list[float] = field(default_factory=list)  # log p of each sampled token under the sampler
    prompt_token_ids: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    parse_error: str | None = None  # set when a response_format was given and the answer did not parse
    error: str | None = None  # set when the engine failed for this sample (e.g. HTTP error)
    latency_s: float = 0.0  # wall time of the generate call that produced it, divided by nothing
    model: str = ""
    # what constrained the completion (engines.constraints.ConstraintSpec; None: unconstrained), for the
    # trainer's replay of the sampling masks; not serialised
    constraint: Any = field(default=None, repr=False, compare=False)

    @property
    def choice_finish_reason(self) -> str:
        """OpenAI's finish_reason of the choice: "tool_calls" when the answer ended with tool calls."""
        return "tool_calls" if self.output_tools and self.finish_reason == "stop" else self.finish_reason

    def grader_sample(self) -> dict[str, Any]:
        """The `sample` namespace graders see (OpenAI: output_text, output_json, output_tools, choices)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.output_text}
        if self.output_tools:
            message["tool_calls"] = self.output_tools
        return {
            "output_text": self.output_text,
            "output_json": self.output_json,
            "output_tools": self.output_tools,
            "choices": [{"index": 0, "finish_reason": self.choice_finish_reason, "message": message}],
        }

    def to_dict(self, *, with_tokens: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data.pop("constraint")
        if not with_tokens:
            for key in ("token_ids", "logprobs", "prompt_token_ids"):
                data.pop(key)
        return data


@runtime_checkable
class Engine(Protocol):
    """Turns a batch of chat prompts into `params.n` Samples each (result[i] answers prompts[i])."""

    model_name: str

    def generate(self, prompts: list[Messages], params: SamplingParams) -> list[list[Sample]]: ...


class EngineError(RuntimeFailure):
    """An engine that cannot be built or used (missing backend, unreachable server, bad model)."""
