"""`/v1/models` and `/v1/chat/completions` for the base models, fine-tuned models and checkpoints.

Every name `openrft.models.resolve_model` knows can be used: `default` (the embedded model), a model
directory, `ft:<base>:openrft:<suffix>:<id>` and its `…:ckpt-step-N` checkpoints. The request's
`response_format`, `reasoning_effort`, `n`, `temperature`, `top_p`, `max_tokens` /
`max_completion_tokens` and `seed` become the engine's `SamplingParams`. With `stream: true` the answer
is sent as server-sent `chat.completion.chunk` events once it is generated (the engine protocol returns
whole samples); reasoning is in `message.reasoning_content` (`delta.reasoning_content` when streaming).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from openrft.engines import Sample, SamplingParams
from openrft.service.app import store_of
from openrft.service.errors import APIError, bad_request
from openrft.service.ids import new_id
from openrft.service.store import Store, jobs

router = APIRouter()
STREAM_PIECE_CHARS = 16  # characters per streamed content delta
REQUEST_PARAMS = {"n", "temperature", "top_p", "max_tokens", "seed", "response_format", "reasoning_effort"}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    n: int = Field(1, ge=1, le=64)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: Literal["default", "minimal", "low", "medium", "high"] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None


# --- models ---

def _model(model_id: str, created: int, owned_by: str = "openrft", **extra) -> dict:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by, **extra}


def available_models(store: Store) -> list[dict]:
    """The base models usable without a download, then each fine-tuned model and checkpoint."""
    from openrft.models import DEFAULT_MODEL
    from openrft.service.jobs import index_cli_runs
    from openrft.training import list_checkpoints, load_job

    models = [_model("default", 0, root=DEFAULT_MODEL), _model(DEFAULT_MODEL, 0, root=DEFAULT_MODEL)]
    index_cli_runs(store)
    for row in store.rows(jobs):
        run_dir = Path(row["run_dir"])
        if not (run_dir / "job.json").is_file():
            continue
        job = load_job(run_dir)
        if job.get("fine_tuned_model"):
            models.append(_model(job["fine_tuned_model"], job.get("finished_at") or row["created_at"],
                                 root=job.get("model"), parent=job.get("model"), fine_tuning_job_id=row["id"]))
        for ckpt in list_checkpoints(run_dir):
            models.append(_model(ckpt["fine_tuned_model_checkpoint"], ckpt.get("created_at") or row["created_at"],
                                 root=job.get("model"), parent=job.get("model"), fine_tuning_job_id=row["id"],
                                 step_number=ckpt.get("step_number")))
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


# --- chat completions ---

def _messages(request: ChatRequest) -> list[dict]:
    """The chat messages for the engine, as training renders them; text content parts are joined."""
    out = []
    for message in request.messages:
        content = message.content
        if isinstance(content, list):
            parts = []
            for part in content:
                if part.get("type") not in ("text", "input_text"):
                    raise bad_request(f"Unsupported content part type {part.get('type')!r}: openrft models read "
                                      "text only.", param="messages")
                parts.append(part.get("text", ""))
            content = "".join(parts)
        out.append({"role": message.role, "content": content or ""})
    return out


def reasoning_effort_of(value: str | None) -> str | None:
    """OpenAI's reasoning_effort as the engine takes it: None (no reasoning) for default, minimal read as low."""
    if value in (None, "default"):
        return None
    return "low" if value == "minimal" else value


def sampling_params(request: ChatRequest) -> SamplingParams:
    params = SamplingParams(n=request.n, seed=request.seed, response_format=request.response_format,
                            reasoning_effort=reasoning_effort_of(request.reasoning_effort))
    if request.temperature is not None:
        params.temperature = request.temperature
    if request.top_p is not None:
        params.top_p = request.top_p
    if request.max_completion_tokens or request.max_tokens:
        params.max_tokens = request.max_completion_tokens or request.max_tokens
    return params


def _usage(samples: list[Sample]) -> dict:
    prompt = samples[0].prompt_tokens if samples else 0
    completion = sum(s.completion_tokens for s in samples)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": sum(s.reasoning_tokens for s in samples)}}


def _generate(request: Request, body: ChatRequest) -> list[Sample]:
    from openrft.engines import EngineError
    from openrft.models import ModelError

    params = sampling_params(body)
    try:
        [samples] = request.app.state.engines.generate(body.model, [_messages(body)], params)
    except ModelError as exc:
        raise _model_not_found(body.model) from exc
    except EngineError as exc:
        # The engine names the request parameter it refuses ("response_format.json_schema.schema: ...").
        param = str(exc).split(":", 1)[0]
        if param.split(".")[0] in REQUEST_PARAMS:
            raise APIError(400, str(exc), param=param, code="invalid_value") from exc
        raise APIError(500, f"The engine for {body.model} failed: {exc}", type="server_error",
                       code="engine_error") from exc
    failed = [s.error for s in samples if s.error]
    if failed:
        raise APIError(500, f"The engine for {body.model} failed: {failed[0]}", type="server_error",
                       code="engine_error")
    return samples


@router.post("/chat/completions")
async def chat_completions(request: Request, body: ChatRequest):
    samples = await run_in_threadpool(_generate, request, body)
    completion_id, created = new_id("chatcmpl-"), int(time.time())
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        return StreamingResponse(_chunks(completion_id, created, body.model, samples, include_usage),
                                 media_type="text/event-stream")
    return {
        "id": completion_id, "object": "chat.completion", "created": created, "model": body.model,
        "system_fingerprint": None, "service_tier": "default",
        "choices": [{"index": i, "logprobs": None, "finish_reason": s.finish_reason,
                     "message": {"role": "assistant", "content": s.output_text, "refusal": None,
                                 "reasoning_content": s.reasoning_text or None}}
                    for i, s in enumerate(samples)],
        "usage": _usage(samples),
    }


def _chunks(completion_id: str, created: int, model: str, samples: list[Sample], include_usage: bool):
    """The server-sent events of a streamed completion, in OpenAI's `chat.completion.chunk` shape."""

    def event(choices: list[dict], usage: dict | None = None) -> str:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "system_fingerprint": None, "choices": choices}
        if include_usage:
            chunk["usage"] = usage
        return f"data: {json.dumps(chunk)}\n\n"

    for i, sample in enumerate(samples):
        yield event([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None,
                      "logprobs": None}])
        for key, text in (("reasoning_content", sample.reasoning_text), ("content", sample.output_text)):
            for start in range(0, len(text or ""), STREAM_PIECE_CHARS):
                yield event([{"index": i, "delta": {key: text[start:start + STREAM_PIECE_CHARS]},
                              "finish_reason": None, "logprobs": None}])
        yield event([{"index": i, "delta": {}, "finish_reason": sample.finish_reason, "logprobs": None}])
    if include_usage:
        yield event([], _usage(samples))
    yield "data: [DONE]\n\n"
