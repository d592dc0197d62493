"""Tool calls through the official `openai` SDK: chat completions and the Responses API with `tools` /
`tool_choice`, on the embedded model (in-process, through FastAPI's TestClient).

A 135M model seldom calls a tool on its own, so the calls here are required (`tool_choice: "required"` or a
named function): the grammar then forces a well-formed call whose arguments follow the tool's schema.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from openrft.service.app import create_app
from openrft.service.engine_cache import EngineCache
from openrft.service.store import Store
from tests.engines.test_tools import ASK, TIME, WEATHER

openai = pytest.importorskip("openai")

KEY = "sk-tools-test"


class RecordingEngine:
    """The embedded model's engine, recording the SamplingParams of each call."""

    def __init__(self, engine):
        self.engine, self.model_name, self.calls = engine, engine.model_name, []
        self.tokenizer, self.stop_token_ids = engine.tokenizer, engine.stop_token_ids

    def generate(self, prompts, params):
        self.calls.append((prompts, params))
        return self.engine.generate(prompts, params)


@pytest.fixture(scope="module")
def model_engine(embedded_model):
    from openrft.engines.transformers import TransformersEngine

    return TransformersEngine.from_name("default", dtype="float32")


@pytest.fixture()
def engine(model_engine):
    return RecordingEngine(model_engine)


@pytest.fixture()
def client(tmp_path, monkeypatch, engine):
    monkeypatch.setenv("OPENRFT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENRFT_DATABASE_URL", raising=False)
    app = create_app(Store(), api_key=KEY)
    app.state.engines = EngineCache(factory=lambda model: engine)
    return openai.OpenAI(api_key=KEY, base_url="http://testserver/v1", http_client=TestClient(app), max_retries=0)


def arguments_ok(tool: dict, arguments: str) -> bool:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(tool["function"]["parameters"]).is_valid(json.loads(arguments))


def test_chat_returns_the_required_tool_calls(client, engine):
    answer = client.chat.completions.create(model="default", messages=ASK, tools=[WEATHER, TIME],
                                            tool_choice="required", parallel_tool_calls=False, n=2, seed=4,
                                            max_completion_tokens=48)
    params = engine.calls[-1][1]
    assert (params.tools, params.tool_choice, params.parallel_tool_calls) == ([WEATHER, TIME], "required", False)
    finished = [c for c in answer.choices if c.finish_reason == "tool_calls"]
    assert finished, [c.message for c in answer.choices]
    for choice in finished:
        assert choice.message.content is None and len(choice.message.tool_calls) == 1
        call = choice.message.tool_calls[0]
        assert call.type == "function" and call.id.startswith("call_")
        tool = {"get_weather": WEATHER, "get_time": TIME}[call.function.name]
        assert arguments_ok(tool, call.function.arguments)

    named = client.chat.completions.create(model="default", messages=ASK, tools=[WEATHER, TIME], seed=1,
                                           tool_choice={"type": "function", "function": {"name": "get_time"}},
                                           max_completion_tokens=40)
    choice = named.choices[0]
    assert [c.function.name for c in choice.message.tool_calls or []] == ["get_time"] or \
        choice.finish_reason == "length"


def test_streamed_tool_calls_accumulate_as_the_sdk_reads_them(client):
    stream = client.chat.completions.create(model="default", messages=ASK, tools=[WEATHER], seed=2,
                                            tool_choice="required", parallel_tool_calls=False,
                                            max_completion_tokens=48, stream=True)
    calls, finish = {}, None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                calls.setdefault(delta.index, {"name": "", "arguments": ""})
                calls[delta.index]["name"] += delta.function.name or ""
                calls[delta.index]["arguments"] += delta.function.arguments or ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls" and list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and arguments_ok(WEATHER, calls[0]["arguments"])


def test_none_answers_in_text_and_a_tool_conversation_is_accepted(client, engine):
    answer = client.chat.completions.create(model="default", messages=ASK, tools=[WEATHER], tool_choice="none",
                                            max_completion_tokens=8, seed=1)
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].finish_reason in ("stop", "length")
    history = ASK + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C and sunny"}]
    client.chat.completions.create(model="default", messages=history, tools=[WEATHER], max_completion_tokens=4)
    prompts, _ = engine.calls[-1]
    assert prompts[0][1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert prompts[0][2] == {"role": "tool", "content": "18 C and sunny", "tool_call_id": "call_1"}

    bad = {"tool_choice": {"tool_choice": {"type": "function", "function": {"name": "nope"}}, "tools": [WEATHER]},
           "tools[1].function.name": {"tools": [WEATHER, WEATHER]},
           "messages[1].tool_calls[0]": {"messages": ASK + [{"role": "assistant", "tool_calls": [{"id": "x"}]}],
                                         "tools": [WEATHER]}}
    asked = len(engine.calls)
    for param, request in bad.items():
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="default", **{"messages": ASK, **request})
        assert caught.value.param == param
    assert len(engine.calls) == asked  # refused before sampling


def test_responses_return_function_call_items(client, engine):
    flat = {"type": "function", **WEATHER["function"]}
    # greedy: a sampled call's arguments can run past the token limit (the call is then cut: "incomplete")
    response = client.responses.create(model="default", input=ASK, tools=[flat], tool_choice="required",
                                       parallel_tool_calls=False, max_output_tokens=48, temperature=0)
    assert engine.calls[-1][1].tools == [WEATHER]
    calls = [item for item in response.output if item.type == "function_call"]
    assert response.status == "completed" and len(calls) == 1, response.output
    assert calls[0].name == "get_weather" and arguments_ok(WEATHER, calls[0].arguments)
    assert calls[0].call_id.startswith("call_") and response.tools[0].name == "get_weather"

    # the call and its output sent back as input items are rendered as a tool conversation
    follow = [*ASK, {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather",
                     "arguments": calls[0].arguments},
              {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18 C"}]
    client.responses.create(model="default", input=follow, tools=[flat], max_output_tokens=4)
    prompts, _ = engine.calls[-1]
    assert [m["role"] for m in prompts[0]] == ["user", "assistant", "tool"]

    events = list(client.responses.create(model="default", input=ASK, tools=[flat], max_output_tokens=48,
                                          tool_choice={"type": "function", "name": "get_weather"}, stream=True))
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.done" in kinds and kinds[-1] in ("response.completed",
                                                                              "response.incomplete")
    for param, tools in {"tools[0].type": [{"type": "web_search"}],
                         "tools[1].name": [flat, flat]}.items():
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model="default", input="hi", tools=tools)
        assert caught.value.param == param
