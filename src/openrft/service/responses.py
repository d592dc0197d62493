"""`/v1/responses` (create only): the Responses API over the same engine path as chat completions.

`input` (a string, or a list of messages whose content is a string or text parts), `instructions` (sent
as a developer message before the input), `text.format` (`text`, `json_object`, or `json_schema` in the
Responses API's flat form `{type, name, schema, strict}`), `reasoning.effort`, `max_output_tokens`,
`temperature`, `top_p` and `stream` are implemented. Function tools are implemented as in chat
completions (openrft.engines.tools): `tools` in the Responses API's flat shape `{type: "function", name,
description, parameters, strict}`, `tool_choice` (`none`, `auto`, `required`, `{type: "function", name}`),
`parallel_tool_calls`; the calls come back as `function_call` output items, and `function_call` /
`function_call_output` input items are rendered into the prompt. Other tool types (web search, file search,
...) are refused. Responses are not stored: `previous_response_id`, `conversation` and `background` are
refused, and there is no retrieve route. Streaming sends the Responses events (`response.created` ...
`response.output_text.delta` ... `response.completed`) once the answer is generated.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from openrft import ids
from openrft.engines import Sample
from openrft.engines.base import ReasoningEffort
from openrft.service.chat import (
    IGNORED_PARAMS,
    check_tools,
    content_text,
    engine_params,
    generate,
    unsupported,
)
from openrft.service.errors import bad_request

router = APIRouter()
STREAM_PIECE_CHARS = 16
# The engine's parameter names as this API calls them, for the errors the engine raises.
PARAM_NAMES = {"max_tokens": "max_output_tokens", "reasoning_effort": "reasoning.effort",
               "response_format": "text.format"}


def param_name(engine_param: str) -> str:
    """An engine parameter as this API names it (a tool's `tools[i].function.name` is `tools[i].name` here)."""
    return PARAM_NAMES.get(engine_param) or re.sub(r"^(tools\[\d+\])\.function\.", r"\1.", engine_param)
ROLES = ("user", "assistant", "system", "developer")


class Reasoning(BaseModel):
    model_config = ConfigDict(extra="allow")
    effort: ReasoningEffort | None = None
    summary: str | None = None  # accepted; the reasoning text itself is returned, not a summary


class ResponsesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    reasoning: Reasoning | None = None
    text: dict[str, Any] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    store: bool | None = None  # accepted; nothing is stored
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    truncation: Literal["disabled"] | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    include: list[str] | None = None


def check_supported(body: ResponsesRequest) -> None:
    """A 400 naming the first parameter this implementation would otherwise ignore."""
    for i, tool in enumerate(body.tools or []):
        if tool.get("type") != "function":
            raise unsupported(f"tools[{i}].type", f"openrft implements function tools only, not {tool.get('type')!r}.")
    check_tools(chat_tools(body.tools), chat_tool_choice(body.tool_choice), body.parallel_tool_calls, param_name)
    if body.top_logprobs:
        raise unsupported("top_logprobs", "openrft's engines do not report the alternatives of a token.")
    if body.include:
        raise unsupported("include", "openrft returns no optional output data.")
    for name in sorted(set(body.model_extra or {}) - IGNORED_PARAMS):
        raise unsupported(name, "openrft does not implement this parameter (responses are not stored, so "
                          "previous_response_id, conversation and background are not available).")


def input_messages(body: ResponsesRequest) -> list[dict]:
    """`instructions` and `input` as the engine's chat messages."""
    messages: list[dict[str, Any]] = [{"role": "developer", "content": body.instructions}] if body.instructions else []
    if isinstance(body.input, str):
        return messages + [{"role": "user", "content": body.input}]
    for i, item in enumerate(body.input):
        kind = item.get("type", "message")
        if kind == "function_call":  # a call the model made: an assistant turn with tool_calls
            call: dict[str, Any] = {"id": str(item.get("call_id") or ""), "type": "function",
                                    "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}
            if not isinstance(call["function"]["name"], str):
                raise bad_request(f"Missing required parameter: 'input[{i}].name'.", param=f"input[{i}].name")
            if messages and messages[-1]["role"] == "assistant" and messages[-1].get("tool_calls") is not None \
                    and not messages[-1]["content"]:
                messages[-1]["tool_calls"].append(call)  # parallel calls: one assistant turn
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
            continue
        if kind == "function_call_output":  # the result of a call: a tool message
            output = item.get("output")
            text = output if isinstance(output, str) else content_text(output, f"input[{i}].output")
            messages.append({"role": "tool", "tool_call_id": str(item.get("call_id") or ""), "content": text})
            continue
        if kind != "message" or item.get("role") not in ROLES:
            raise bad_request(f"Invalid value for 'input[{i}]': openrft takes messages with a role in {list(ROLES)} "
                              "and text content, function_call and function_call_output items (no reasoning items, "
                              "item references or other tool items).", param=f"input[{i}]")
        messages.append({"role": item["role"], "content": content_text(item.get("content"), f"input[{i}].content")})
    if not messages:
        raise bad_request("Invalid value for 'input': at least one message is needed.", param="input")
    return messages


def response_format_of(text_format: dict | None, param: str = "text.format") -> dict | None:
    """The Responses API's flat `text.format` as Chat Completions' `response_format` (what the engine takes)."""
    if not text_format or text_format.get("type") == "text":
        return None
    if text_format.get("type") == "json_object":
        return {"type": "json_object"}
    if text_format.get("type") == "json_schema":
        if not isinstance(text_format.get("schema"), dict):
            raise bad_request(f"Missing required parameter: '{param}.schema'.", param=f"{param}.schema")
        return {"type": "json_schema", "json_schema": {k: v for k, v in text_format.items() if k != "type"}}
    raise bad_request(f"Invalid value for '{param}.type': {text_format.get('type')!r} (expected text, json_object "
                      "or json_schema).", param=f"{param}.type")


def chat_tools(tools: list[dict] | None) -> list[dict] | None:
    """The Responses API's flat function tools in Chat Completions' shape (what the engine takes)."""
    if not tools:
        return None
    return [{"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}} for tool in tools]


def chat_tool_choice(choice: str | dict | None) -> str | dict | None:
    """The Responses API's tool_choice in Chat Completions' shape: `{type: "function", name}` and the names
    of an `allowed_tools` choice nest under `function`."""
    if not isinstance(choice, dict):
        return choice
    if choice.get("type") == "function" and "name" in choice:
        return {"type": "function", "function": {"name": choice["name"]}}
    if choice.get("type") == "allowed_tools":
        refs = [{"type": "function", "function": {"name": t.get("name")}} if "name" in t else t
                for t in choice.get("tools") or []]
        return {"type": "allowed_tools", "allowed_tools": {"mode": choice.get("mode"), "tools": refs}}
    return choice


def _params(body: ResponsesRequest):
    text_format = (body.text or {}).get("format")
    return engine_params(temperature=body.temperature, top_p=body.top_p, max_tokens=body.max_output_tokens,
                         seed=None, response_format=response_format_of(text_format),
                         reasoning_effort=body.reasoning.effort if body.reasoning else None,
                         tools=chat_tools(body.tools), tool_choice=chat_tool_choice(body.tool_choice),
                         parallel_tool_calls=body.parallel_tool_calls)


class ResponseBuilder:
    """The `response` object of one sample, and the output items it is made of."""

    def __init__(self, body: ResponsesRequest, sample: Sample):
        self.body = body
        self.sample = sample
        self.id = ids.response_id()
        self.created_at = int(time.time())
        self.message_id = ids.message_id()
        self.reasoning_id = ids.reasoning_id()
        self.incomplete = sample.finish_reason == "length"

    def reasoning_item(self) -> dict | None:
        if not self.sample.reasoning_text:
            return None
        return {"type": "reasoning", "id": self.reasoning_id, "summary": [],
                "content": [{"type": "reasoning_text", "text": self.sample.reasoning_text}]}

    def text_part(self, text: str) -> dict:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def message_item(self, text: str | None = None, status: str | None = None) -> dict:
        status = status or ("incomplete" if self.incomplete else "completed")
        content = [] if text is None else [self.text_part(text)]
        return {"type": "message", "id": self.message_id, "status": status, "role": "assistant", "content": content}

    def call_items(self) -> list[dict]:
        """The answer's tool calls as `function_call` output items."""
        return [{"type": "function_call", "id": "fc_" + call["id"].removeprefix("call_"), "call_id": call["id"],
                 "name": call["function"]["name"], "arguments": call["function"]["arguments"],
                 "status": "completed"} for call in self.sample.output_tools]

    def output(self) -> list[dict]:
        message = self.message_item(self.sample.output_text) \
            if self.sample.output_text or not self.sample.output_tools else None
        return [item for item in (self.reasoning_item(), message, *self.call_items()) if item]

    def response(self, status: str | None = None, output: list[dict] | None = None) -> dict:
        body, sample = self.body, self.sample
        final = status is None
        status = status or ("incomplete" if self.incomplete else "completed")
        usage = {"input_tokens": sample.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": sample.completion_tokens,
                 "output_tokens_details": {"reasoning_tokens": sample.reasoning_tokens},
                 "total_tokens": sample.prompt_tokens + sample.completion_tokens}
        return {
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "background": False, "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if final and self.incomplete else None,
            "instructions": body.instructions, "max_output_tokens": body.max_output_tokens, "model": body.model,
            "output": self.output() if output is None else output,
            "parallel_tool_calls": body.parallel_tool_calls if body.parallel_tool_calls is not None else True,
            "previous_response_id": None,
            "reasoning": {"effort": body.reasoning.effort if body.reasoning else None, "summary": None},
            "store": False, "temperature": body.temperature if body.temperature is not None else 1.0,
            "text": {"format": (body.text or {}).get("format") or {"type": "text"}},
            "tool_choice": body.tool_choice if body.tool_choice is not None else "auto",
            "tools": [{"strict": None, "description": None, **tool} for tool in body.tools or []],
            "top_p": body.top_p if body.top_p is not None else 1.0,
            "truncation": "disabled", "usage": usage if final else None, "user": None, "metadata": {},
        }


@router.post("/responses")
async def create_response(request: Request, body: ResponsesRequest):
    check_supported(body)
    messages = input_messages(body)
    params = _params(body)
    samples, _ = await run_in_threadpool(generate, request, body.model, messages, params, param_name)
    built = ResponseBuilder(body, samples[0])
    if body.stream:
        return StreamingResponse(_events(built), media_type="text/event-stream")
    return built.response()


def _events(built: ResponseBuilder):
    """The server-sent events of a streamed response, in the Responses API's order."""
    sequence = 0

    def event(kind: str, **fields) -> str:
        nonlocal sequence
        data = {"type": kind, "sequence_number": sequence, **fields}
        sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n"

    yield event("response.created", response=built.response("in_progress", []))
    yield event("response.in_progress", response=built.response("in_progress", []))
    index = 0
    reasoning = built.reasoning_item()
    if reasoning:
        yield event("response.output_item.added", output_index=index, item={**reasoning, "content": []})
        yield event("response.output_item.done", output_index=index, item=reasoning)
        index += 1
    text, item_id = built.sample.output_text, built.message_id
    if text or not built.sample.output_tools:
        yield event("response.output_item.added", output_index=index, item=built.message_item(status="in_progress"))
        yield event("response.content_part.added", item_id=item_id, output_index=index, content_index=0,
                    part=built.text_part(""))
        for start in range(0, len(text), STREAM_PIECE_CHARS):
            yield event("response.output_text.delta", item_id=item_id, output_index=index, content_index=0,
                        delta=text[start:start + STREAM_PIECE_CHARS], logprobs=[])
        yield event("response.output_text.done", item_id=item_id, output_index=index, content_index=0, text=text,
                    logprobs=[])
        yield event("response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                    part=built.text_part(text))
        yield event("response.output_item.done", output_index=index, item=built.message_item(text))
        index += 1
    for call in built.call_items():  # each call's arguments in one delta
        yield event("response.output_item.added", output_index=index,
                    item={**call, "arguments": "", "status": "in_progress"})
        yield event("response.function_call_arguments.delta", item_id=call["id"], output_index=index,
                    delta=call["arguments"])
        yield event("response.function_call_arguments.done", item_id=call["id"], output_index=index,
                    name=call["name"], arguments=call["arguments"])
        yield event("response.output_item.done", output_index=index, item=call)
        index += 1
    final = built.response()
    yield event("response.incomplete" if final["status"] == "incomplete" else "response.completed", response=final)
