"""score_model and label_model (spec §3.5, §3.6): a judge model grades the sample.

The judge runs through the engine protocol (`openrft.engines`): `judge_engine_factory(model_name)`
returns an Engine; the default builds `get_engine(model_name)` (so `"default"` is the embedded model),
or, when `$OPENRFT_JUDGE_BASE_URL` is set, an OpenAI-compatible endpoint with `$OPENRFT_JUDGE_API_KEY`.
Engines are built once per model name and shared by every model grader of the process.

The grader renders its `input` messages, asks the judge for OpenAI's structured output
(`{"steps": [{"description", "conclusion"}], "result": ...}`, enforced as a json_schema
response_format) and reads `result` (also from an answer cut at the token limit, as small local
judges write `result` before `steps` as often as after): a number clipped to `range` for score_model, one of `labels`
for label_model (reward 1 if it is a passing label). A whole group is one `generate` call.
Failures: the engine raising or a sample with an error is `model_grader_server_error`; a refusal
(finish_reason "content_filter" or a `refusal` on the sample) is `model_grader_refusal_error`; an
answer without a usable `result` is `model_grader_parse_error`. Token usage and latency are recorded.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from openrft.engines.base import Engine, SamplingParams
from openrft.graders.base import Grader
from openrft.graders.grade import Grade
from openrft.graders.templating import TemplateError, render

JudgeFactory = Callable[[str], Engine]
DEFAULT_MAX_TOKENS = 512

_STEPS = {"type": "array", "items": {"type": "object", "properties": {
    "description": {"type": "string"}, "conclusion": {"type": "string"}},
    "required": ["description", "conclusion"], "additionalProperties": False}}

MAX_JUDGES = 2  # judge engines kept loaded at once; the least recently used one is dropped past that
_judges: "OrderedDict[tuple, Engine]" = OrderedDict()
_judges_lock = threading.Lock()


def judge_key(model_name: str, base_url: str | None) -> tuple:
    """What identifies a judge: the resolved local model (so `"default"` and `"default "` are one), or the
    stripped name at a remote endpoint."""
    if base_url:
        return ("http", base_url, model_name.strip())
    from openrft.models import resolve_model

    ref = resolve_model(model_name, prepare=False)
    return (ref.kind, str(Path(ref.path).resolve()), str(Path(ref.base.path).resolve()) if ref.base else None)


def default_judge_engine(model_name: str) -> Engine:
    """The judge engine for a model name, built once per resolved model: a local model, or the endpoint in
    $OPENRFT_JUDGE_BASE_URL. At most MAX_JUDGES stay loaded (least recently used dropped, closed if it can)."""
    from openrft.engines import get_engine

    base_url = os.environ.get("OPENRFT_JUDGE_BASE_URL") or None
    with _judges_lock:
        key = judge_key(model_name, base_url)
        if key in _judges:
            _judges.move_to_end(key)
            return _judges[key]
        while len(_judges) >= MAX_JUDGES:
            _, dropped = _judges.popitem(last=False)
            close = getattr(dropped, "close", None)
            if callable(close):
                close()
        if base_url:
            engine = get_engine(model_name.strip(), base_url=base_url, api_key=os.environ.get("OPENRFT_JUDGE_API_KEY"))
        else:
            engine = get_engine(model_name.strip())
        _judges[key] = engine
        return engine


def score_response_format(low: float, high: float) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "float_score_classification", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "required": ["steps", "result"],
        "properties": {"steps": _STEPS, "result": {
            "type": "number", "description": f"the score, between {low:g} and {high:g}"}}}}}


def label_response_format(labels: list[str]) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "label_classification", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "required": ["steps", "result"],
        "properties": {"steps": _STEPS, "result": {"type": "string", "enum": list(labels)}}}}}


def _content(content, sample: dict, item: dict) -> Any:
    """A message's content rendered: a string, or chat-completions parts when it carries images or audio."""
    if isinstance(content, str):
        return render(content, sample, item)
    parts = content if isinstance(content, list) else [content]
    if all(part.type in ("input_text", "output_text") for part in parts):
        return "\n".join(render(part.text, sample, item) for part in parts)
    rendered: list[dict[str, Any]] = []
    for part in parts:
        if part.type in ("input_text", "output_text"):
            rendered.append({"type": "text", "text": render(part.text, sample, item)})
        elif part.type == "input_image":
            image = {"url": render(part.image_url, sample, item)}
            if part.detail:
                image["detail"] = part.detail
            rendered.append({"type": "image_url", "image_url": image})
        else:
            rendered.append({"type": "input_audio", "input_audio": part.input_audio})
    return rendered


class ModelGrader(Grader):
    """What score_model and label_model share: prompts, the judge call, error mapping, usage."""

    response_format: dict

    def __init__(self, spec, *, judge_engine_factory: JudgeFactory | None = None):
        super().__init__(spec)
        self.judge_engine_factory = judge_engine_factory or default_judge_engine

    def prompt(self, sample: dict, item: dict) -> list[dict]:
        return [{"role": "system" if message.role == "developer" else message.role,
                 "content": _content(message.content, sample, item)} for message in self.spec.input]

    def sampling_params(self) -> SamplingParams:
        params = self.spec.sampling_params
        options: dict[str, Any] = {"n": 1, "response_format": self.response_format,
                                   "max_tokens": (params.token_limit if params else None) or DEFAULT_MAX_TOKENS}
        if params is not None:
            for name in ("temperature", "top_p", "seed", "reasoning_effort"):
                if getattr(params, name) is not None:
                    options[name] = getattr(params, name)
        return SamplingParams(**options)

    def grade_many(self, pairs) -> list[Grade]:
        pairs = list(pairs)
        grades: list[Grade | None] = [None] * len(pairs)
        prompts, positions = [], []
        for index, (sample, item) in enumerate(pairs):
            try:
                prompts.append(self.prompt(sample, item))
                positions.append(index)
            except TemplateError as exc:
                grades[index] = self.failed("invalid_variable_error", str(exc))
        if prompts:
            started = time.perf_counter()
            try:
                engine = self.judge_engine_factory(self.spec.model)
                answers = engine.generate(prompts, self.sampling_params())
            except Exception as exc:  # any failure of the judge is a graded server error
                message = f"the judge model {self.spec.model!r} failed: {type(exc).__name__}: {exc}"
                for index in positions:
                    grades[index] = self.failed("model_grader_server_error", message,
                                                sampled_model_name=self.spec.model)
            else:
                elapsed = time.perf_counter() - started
                for index, samples in zip(positions, answers):
                    grades[index] = self.judged(samples[0] if samples else None, elapsed)
        return grades  # type: ignore[return-value]

    def judged(self, answer, elapsed: float) -> Grade:
        """The grade for one judge answer (a Sample)."""
        fields = {"sampled_model_name": self.spec.model}
        if answer is None:
            return self.failed("model_grader_server_error", "the judge returned no sample", **fields)
        usage = {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
                 "total_tokens": answer.prompt_tokens + answer.completion_tokens, "cached_tokens": 0}
        fields["token_usage"] = {answer.model or self.spec.model: usage}
        fields["execution_time"] = answer.latency_s or elapsed
        if answer.error or answer.finish_reason == "error":
            grade = self.failed("model_grader_server_error", f"the judge failed: {answer.error or 'error'}", **fields)
        elif getattr(answer, "refusal", None) or answer.finish_reason == "content_filter":
            grade = self.failed("model_grader_refusal_error",
                                f"the judge refused: {getattr(answer, 'refusal', None) or answer.output_text!r:.300}",
                                **fields)
        else:
            result, problem = self.read_result(_answer_json(answer))
            if problem:
                if answer.finish_reason == "length":
                    problem += " (the answer was cut at the token limit)"
                grade = self.failed("model_grader_parse_error",
                                    f"{problem}; the judge said {answer.output_text!r:.300}", **fields)
            else:
                grade = Grade(reward=result, name=self.name, type=self.type, **fields)
                self.note(grade, _answer_json(answer))
        return grade

    def read_result(self, data: Any) -> tuple[float, str | None]:
        raise NotImplementedError

    def note(self, grade: Grade, data: Any) -> None:
        """Record what the judge said beyond the reward (in `scores`)."""


_RESULT = re.compile(r'"result"\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|"(?:[^"\\]|\\.)*")')


def _answer_json(answer) -> Any:
    """The judge's structured answer; from an answer cut short, the `result` it had already given."""
    if answer.output_json is not None:
        return answer.output_json
    try:
        return json.loads(answer.output_text)
    except (TypeError, ValueError):
        pass
    found = _RESULT.search(answer.output_text or "")
    return {"result": json.loads(found.group(1))} if found else None


class ScoreModelGrader(ModelGrader):
    def __init__(self, spec, **options):
        super().__init__(spec, **options)
        self.low, self.high = spec.range
        self.response_format = score_response_format(self.low, self.high)

    def read_result(self, data: Any) -> tuple[float, str | None]:
        value = data.get("result") if isinstance(data, dict) else data
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return 0.0, f"no numeric result in the judge's answer (result={value!r:.80})"
        return min(self.high, max(self.low, float(value))), None


class LabelModelGrader(ModelGrader):
    def __init__(self, spec, **options):
        super().__init__(spec, **options)
        self.response_format = label_response_format(spec.labels)

    def read_result(self, data: Any) -> tuple[float, str | None]:
        label = data.get("result") if isinstance(data, dict) else data
        if not isinstance(label, str) or label not in self.spec.labels:
            return 0.0, f"the judge's label {label!r:.80} is not one of {self.spec.labels}"
        return (1.0 if label in self.spec.passing_labels else 0.0), None

    def note(self, grade: Grade, data: Any) -> None:
        grade.scores["label"] = data.get("result") if isinstance(data, dict) else data
