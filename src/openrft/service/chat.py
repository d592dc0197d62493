"""`/v1/models` (list, retrieve, delete) and `/v1/chat/completions` for base, fine-tuned and checkpoint models.

Every name `openrft.models.resolve_model` knows can be used: `default` (the embedded model), a model
directory, `ft:<base>:openrft:<suffix>:<id>` and its `…:ckpt-step-N` checkpoints. The request's
`response_format`, `reasoning_effort`, `n`, `temperature`, `top_p` (0 = greedy), `max_tokens` /
`max_completion_tokens` and `seed` become the engine's `SamplingParams`; `stop` cuts the answer before
the first stop sequence; `logprobs` reports the log-probability of each answer token (`top_logprobs` 0
only). `tools`, `tool_choice` and `parallel_tool_calls` go to the engine (openrft.engines.tools): the
answer's calls come back as `message.tool_calls` with `finish_reason: "tool_calls"`, and assistant messages
with `tool_calls` and `tool` messages are rendered into the prompt. Every other parameter OpenAI defines
(penalties, logit_bias, the deprecated functions, ...) is refused with a 400 naming it, except the few that
only tag or route a request (`IGNORED_PARAMS`). With `stream: true` the
answer is sent as server-sent `chat.completion.chunk` events once it is generated (the engine protocol
returns whole samples); reasoning is in `message.reasoning_content` (`delta.reasoning_content` when
streaming).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from openrft.engines import Sample, SamplingParams
from openrft.engines.base import ReasoningEffort
from openrft.engines.reasoning import effort_level
from openrft.ids import chat_completion_id
from openrft.service.app import store_of
from openrft.service.errors import APIError, bad_request
from openrft.service.store import Store, jobs

router = APIRouter()
STREAM_PIECE_CHARS = 16  # characters per streamed content delta
# The request parameters the engine checks itself: its EngineError names them ("top_p: ...").
REQUEST_PARAMS = {"n", "temperature", "top_p", "max_tokens", "seed", "response_format", "reasoning_effort", "tools",
                  "tool_choice"}
# Accepted and without effect here: they tag, route or bill a request on OpenAI's side.
IGNORED_PARAMS = {"user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier",
                  "metadata"}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[str | dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """The Chat Completions request. Parameters openrft does not implement are refused by `check_supported`."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    n: int = Field(1, ge=1, le=64)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: dict[str, Any] | None = None
    reasoning_effort: ReasoningEffort | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    store: bool | None = None
    modalities: list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None


def unsupported(param: str, why: str) -> APIError:
    return APIError(400, f"Unsupported parameter: '{param}': {why}", param=param, code="unsupported_parameter")


def check_supported(body: ChatRequest) -> None:
    """A 400 naming the first parameter openrft would otherwise ignore: never a silent 200."""
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(body, name):
            raise unsupported(name, "openrft's engines sample without repetition penalties (only 0 is accepted).")
    if body.logit_bias:
        raise unsupported("logit_bias", "openrft's engines do not bias logits (only {} is accepted).")
    if body.store:
        raise unsupported("store", "openrft does not store chat completions (only false is accepted).")
    if body.modalities not in (None, ["text"]):
        raise unsupported("modalities", "openrft models answer with text only.")
    if body.top_logprobs:
        raise unsupported("top_logprobs", "openrft's engines report the log-probability of each sampled token, "
                          "not of the alternatives (only 0 is accepted).")
    if body.top_logprobs is not None and not body.logprobs:
        raise bad_request("Invalid value for 'top_logprobs': logprobs must be true when top_logprobs is given.",
                          param="top_logprobs")
    stops = stop_list(body.stop)
    if len(stops) > 4 or any(not s for s in stops):
        raise bad_request("Invalid value for 'stop': at most 4 non-empty strings.", param="stop")
    check_tools(body.tools, body.tool_choice, body.parallel_tool_calls)
    for name in sorted(set(body.model_extra or {}) - IGNORED_PARAMS):
        raise unsupported(name, "openrft does not implement this parameter.")


def check_tools(tools, tool_choice, parallel_tool_calls, rename: Callable[[str], str] | None = None) -> None:
    """A 400 naming the tool or `tool_choice` the engine would refuse (checked before any model is loaded)."""
    from openrft.engines import EngineError
    from openrft.engines.tools import tool_use

    try:
        tool_use(tools, tool_choice, parallel_tool_calls)
    except EngineError as exc:
        param = str(exc).split(":", 1)[0]
        param = rename(param) if rename else param
        raise APIError(400, f"Invalid value for '{param}':{str(exc).split(':', 1)[1]}", param=param,
                       code="invalid_value") from None


def stop_list(stop: str | list[str] | None) -> list[str]:
    return [stop] if isinstance(stop, str) else list(stop or [])


# --- models ---

def _model(model_id: str, created: int, owned_by: str = "openrft", **extra) -> dict:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by, **extra}


def available_models(store: Store) -> list[dict]:
    """The base models usable without a download, then each fine-tuned model and checkpoint."""
    from openrft.models import DEFAULT_MODEL
    from openrft.runs import final_dir, is_job_dir, list_checkpoints, load_job
    from openrft.service.jobs import index_cli_runs

    models = [_model("default", 0, root=DEFAULT_MODEL), _model(DEFAULT_MODEL, 0, root=DEFAULT_MODEL)]
    index_cli_runs(store)
    for row in store.rows(jobs):
        run_dir = Path(row["run_dir"])
        if not is_job_dir(run_dir):
            continue
        job = load_job(run_dir)
        if job.fine_tuned_model and final_dir(run_dir).is_dir():  # not deleted
            models.append(_model(job.fine_tuned_model, job.finished_at or row["created_at"],
                                 root=job.model, parent=job.model, fine_tuning_job_id=row["id"]))
        for ckpt in list_checkpoints(run_dir):
            models.append(_model(ckpt.fine_tuned_model_checkpoint, ckpt.created_at or row["created_at"],
                                 root=job.model, parent=job.model, fine_tuning_job_id=row["id"],
                                 step_number=ckpt.step_number))
    return models


@router.get("/models")
def list_models(request: Request):
    return {"object": "list", "data": available_models(store_of(request))}


@router.get("/models/{model_id:path}")
def retrieve_model(request: Request, model_id: str):
    for model in available_models(store_of(request)):
        if model["id"] == model_id:
            return model
    raise _model_not_found(model_id)


def _model_not_found(model: str) -> APIError:
    return APIError(404, f"The model `{model}` does not exist or you do not have access to it.", param="model",
                    code="model_not_found")


@router.delete("/models/{model_id:path}")
def delete_model(request: Request, model_id: str):
    """Delete a fine-tuned model or checkpoint of a finished job: its weights are removed from the run directory."""
    import shutil

    from openrft.runs import TERMINAL, load_job

    store = store_of(request)
    found = next((m for m in available_models(store) if m["id"] == model_id), None)
    if found is None:
        raise _model_not_found(model_id)
    if "fine_tuning_job_id" not in found:
        raise APIError(403, f"The model `{model_id}` is a base model: only fine-tuned models can be deleted.",
                       param="model", code="model_not_deletable", type="invalid_request_error")
    row = store.get(jobs, found["fine_tuning_job_id"])
    assert row is not None  # the model was listed from this job
    run_dir = Path(row["run_dir"])
    if load_job(run_dir).status not in TERMINAL:
        raise APIError(400, f"The model `{model_id}` belongs to job {row['id']}, which has not finished: cancel it "
                       "or wait for it before deleting its models.", param="model", code="invalid_status")
    step = found.get("step_number")
    folder = run_dir / "checkpoints" / ("final" if step is None else f"step-{step}")
    doomed = folder.with_name(folder.name + ".deleted")  # renamed first: never half-deleted under its own name
    shutil.rmtree(doomed, ignore_errors=True)
    folder.rename(doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    request.app.state.engines.drop(model_id)
    return {"id": model_id, "object": "model", "deleted": True}


# --- chat completions ---

def content_text(content: Any, param: str = "messages") -> str:
    """A message's content as text: a string, or a list of text parts (and bare strings) joined."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        raise bad_request(f"Invalid value for '{param}': content must be a string or a list of text parts.",
                          param=param)
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text"):
            parts.append(str(part.get("text", "")))
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise bad_request(f"Unsupported content part type {kind!r}: openrft models read text only.", param=param)
    return "".join(parts)


def _messages(request: ChatRequest) -> list[dict]:
    """The chat messages for the engine, as training renders them; text content parts are joined. An assistant
    message keeps its `tool_calls`, a tool message its `tool_call_id` (openrft.engines.tools renders them)."""
    out = []
    for i, m in enumerate(request.messages):
        message: dict[str, Any] = {"role": m.role, "content": content_text(m.content, f"messages[{i}].content")}
        extra = m.model_extra or {}
        if m.role == "assistant" and extra.get("tool_calls"):
            message["tool_calls"] = tool_calls_of(extra["tool_calls"], f"messages[{i}].tool_calls")
        if m.role == "tool" and extra.get("tool_call_id"):
            message["tool_call_id"] = str(extra["tool_call_id"])
        out.append(message)
    return out


def tool_calls_of(calls: Any, param: str) -> list[dict]:
    """An assistant message's tool_calls, checked: `[{id, type: "function", function: {name, arguments}}]`."""
    if not isinstance(calls, list):
        raise bad_request(f"Invalid value for '{param}': expected a list of tool calls.", param=param)
    out = []
    for k, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_request(f"Invalid value for '{param}[{k}]': expected {{id, type: \"function\", function: "
                              "{name, arguments}}.", param=f"{param}[{k}]")
        out.append({"id": str(call.get("id") or ""), "type": "function",
                    "function": {"name": function["name"], "arguments": function.get("arguments") or "{}"}})
    return out


def engine_params(*, n: int = 1, temperature: float | None, top_p: float | None, max_tokens: int | None,
                  seed: int | None, response_format: dict | None, reasoning_effort: str | None,
                  tools: list[dict] | None = None, tool_choice: str | dict | None = None,
                  parallel_tool_calls: bool | None = None) -> SamplingParams:
    """The engine's SamplingParams for a request; `top_p` 0 (only the most likely token) is greedy decoding."""
    params = SamplingParams(n=n, seed=seed, response_format=response_format,
                            reasoning_effort=effort_level(reasoning_effort), tools=tools or None,
                            tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls)
    if temperature is not None:
        params.temperature = temperature
    if top_p == 0:
        params.temperature = 0.0
    elif top_p is not None:
        params.top_p = top_p
    if max_tokens:
        params.max_tokens = max_tokens
    return params


def sampling_params(request: ChatRequest) -> SamplingParams:
    return engine_params(n=request.n, temperature=request.temperature, top_p=request.top_p,
                         max_tokens=request.max_completion_tokens or request.max_tokens, seed=request.seed,
                         response_format=request.response_format, reasoning_effort=request.reasoning_effort,
                         tools=request.tools, tool_choice=request.tool_choice,
                         parallel_tool_calls=request.parallel_tool_calls)


def _usage(samples: list[Sample]) -> dict:
    prompt = samples[0].prompt_tokens if samples else 0
    completion = sum(s.completion_tokens for s in samples)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": sum(s.reasoning_tokens for s in samples)}}


def generate(request: Request, model: str, messages: list[dict], params: SamplingParams,
             rename: Callable[[str], str] | None = None) -> tuple[list[Sample], Any]:
    """The samples of one prompt and the engine that drew them, with the engine's refusals as OpenAI errors.

    `rename` renames the engine's parameter names in errors (the Responses API says max_output_tokens).
    """
    from openrft.engines import EngineError
    from openrft.models import ModelError

    cache = request.app.state.engines
    try:
        engine, _ = cache.get(model)
        [samples] = cache.generate(model, [messages], params)
    except ModelError as exc:
        raise _model_not_found(model) from exc
    except EngineError as exc:
        # The engine names the request parameter it refuses ("response_format.json_schema.schema: ...").
        param = str(exc).split(":", 1)[0]
        if re.split(r"[.\[]", param)[0] in REQUEST_PARAMS:
            param = rename(param) if rename else param
            raise APIError(400, str(exc), param=param, code="invalid_value") from exc
        raise APIError(500, f"The engine for {model} failed: {exc}", type="server_error", code="engine_error") from exc
    failed = [s.error for s in samples if s.error]
    if failed:
        raise APIError(500, f"The engine for {model} failed: {failed[0]}", type="server_error", code="engine_error")
    return samples, engine


def apply_stop(sample: Sample, stops: list[str]) -> Sample:
    """The sample with its answer cut before the first stop sequence (finish_reason "stop" when cut).

    The engine does not stop at these strings itself: the tokens after one are generated, then dropped.
    """
    cuts = [i for i in (sample.output_text.find(s) for s in stops) if i >= 0]
    if not cuts:
        return sample
    return replace(sample, output_text=sample.output_text[:min(cuts)], finish_reason="stop")


def token_logprobs(engine, sample: Sample) -> list[dict]:
    """OpenAI's `logprobs.content`: each answer token with the log-probability the engine drew it with.

    The reasoning segment and the end-of-sequence token are left out, and so are tokens past a stop sequence.
    An answer with tool calls reports all its tokens (the `<tool_call>` text included).
    `top_logprobs` is always empty: the engine does not report alternatives.
    """
    from openrft.engines.reasoning import THINK_END

    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is None or len(sample.token_ids) != len(sample.logprobs):
        raise unsupported("logprobs", "the engine of this model does not report per-token log-probabilities.")
    ids, logprobs = list(sample.token_ids), list(sample.logprobs)
    if ids and ids[-1] in set(getattr(engine, "stop_token_ids", ())):
        ids, logprobs = ids[:-1], logprobs[:-1]
    pieces = [tokenizer.decode([token]) for token in ids]
    start = 0
    if sample.reasoning_text:
        seen = ""
        for k, piece in enumerate(pieces):
            seen += piece
            if THINK_END in seen:
                start = k + 1
                break
    out: list[dict[str, Any]] = []
    seen = ""
    for piece, logprob in zip(pieces[start:], logprobs[start:]):
        if out and not sample.output_tools and len(seen.lstrip()) >= len(sample.output_text):
            break  # the rest was cut by a stop sequence (an answer with tool calls keeps every token)
        out.append({"token": piece, "logprob": logprob, "bytes": list(piece.encode("utf-8")), "top_logprobs": []})
        seen += piece
    return out


def _choice_logprobs(body: ChatRequest, engine, sample: Sample) -> dict | None:
    return {"content": token_logprobs(engine, sample), "refusal": None} if body.logprobs else None


@router.post("/chat/completions")
async def chat_completions(request: Request, body: ChatRequest):
    check_supported(body)
    messages = _messages(body)
    samples, engine = await run_in_threadpool(generate, request, body.model, messages, sampling_params(body))
    samples = [apply_stop(s, stop_list(body.stop)) for s in samples]
    completion_id, created = chat_completion_id(), int(time.time())
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        logprobs = [_choice_logprobs(body, engine, s) for s in samples]
        return StreamingResponse(_chunks(completion_id, created, body.model, samples, include_usage, logprobs),
                                 media_type="text/event-stream")
    return {
        "id": completion_id, "object": "chat.completion", "created": created, "model": body.model,
        "system_fingerprint": None, "service_tier": "default",
        "choices": [{"index": i, "logprobs": _choice_logprobs(body, engine, s),
                     "finish_reason": s.choice_finish_reason, "message": assistant_message(s)}
                    for i, s in enumerate(samples)],
        "usage": _usage(samples),
    }


def assistant_message(sample: Sample) -> dict:
    """The choice's message: the answer, its tool calls (content null when the answer is only calls, as OpenAI),
    and the reasoning in `reasoning_content`."""
    message: dict[str, Any] = {"role": "assistant", "content": sample.output_text, "refusal": None,
                               "reasoning_content": sample.reasoning_text or None}
    if sample.output_tools:
        message["content"] = sample.output_text or None
        message["tool_calls"] = sample.output_tools
    return message


def _chunks(completion_id: str, created: int, model: str, samples: list[Sample], include_usage: bool,
            logprobs: list[dict | None]):
    """The server-sent events of a streamed completion, in OpenAI's `chat.completion.chunk` shape.

    With logprobs, the answer is sent one token per chunk, each with its log-probability.
    """

    def event(choices: list[dict], usage: dict | None = None) -> str:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "system_fingerprint": None, "choices": choices}
        if include_usage:
            chunk["usage"] = usage
        return f"data: {json.dumps(chunk)}\n\n"

    for i, sample in enumerate(samples):
        yield event([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None,
                      "logprobs": None}])
        text = sample.reasoning_text or ""
        for start in range(0, len(text), STREAM_PIECE_CHARS):
            yield event([{"index": i, "delta": {"reasoning_content": text[start:start + STREAM_PIECE_CHARS]},
                          "finish_reason": None, "logprobs": None}])
        choice_logprobs = logprobs[i]
        if choice_logprobs is not None:
            sent = 0
            for k, token in enumerate(choice_logprobs["content"]):
                last = k == len(choice_logprobs["content"]) - 1
                piece = sample.output_text[sent:] if last else sample.output_text[sent:sent + len(token["token"])]
                sent += len(piece)
                yield event([{"index": i, "delta": {"content": piece}, "finish_reason": None,
                              "logprobs": {"content": [token], "refusal": None}}])
        else:
            text = sample.output_text or ""
            for start in range(0, len(text), STREAM_PIECE_CHARS):
                yield event([{"index": i, "delta": {"content": text[start:start + STREAM_PIECE_CHARS]},
                              "finish_reason": None, "logprobs": None}])
        for k, call in enumerate(sample.output_tools):  # one chunk per call, its arguments whole
            yield event([{"index": i, "delta": {"tool_calls": [{"index": k, **call}]}, "finish_reason": None,
                          "logprobs": None}])
        yield event([{"index": i, "delta": {}, "finish_reason": sample.choice_finish_reason, "logprobs": None}])
    if include_usage:
        yield event([], _usage(samples))
    yield "data: [DONE]\n\n"
