"""Function tools (openrft.engines.tools): the prompt, the parsing of calls, the grammar of required calls, its
replay by the trainer, and rows' tools reaching the graders' `sample.output_tools`.

The embedded 135M model rarely writes a tool call on its own, so parsing is tested on given text and the
generation tests use a required (grammar-forced) call."""

from __future__ import annotations

import json

import pytest
import torch

from openrft.engines.base import EngineError, SamplingParams
from tests.engines.conftest import trainer_logprobs

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 12}},
                                       "required": ["zone"], "additionalProperties": False}}}
TOOLS = [WEATHER, TIME]
ASK = [{"role": "user", "content": "What is the weather in Paris right now?"}]


def schema_errors(tool: dict, arguments: str) -> list:
    from jsonschema import Draft202012Validator

    return list(Draft202012Validator(tool["function"]["parameters"]).iter_errors(json.loads(arguments)))


# --- parsing, on given text ---

def test_tool_calls_are_parsed_into_openai_s_shape():
    from openrft.engines.tools import parse_tool_calls

    text = ('Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n'
            '</tool_call>\n<tool_call>{"name": "get_time", "arguments": "{\\"zone\\": \\"CET\\"}"}</tool_call>')
    content, calls = parse_tool_calls(text, seed="a")
    assert content == "Let me check."
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"city": "Paris", "unit": "celsius"},
                                                                        {"zone": "CET"}]
    assert all(c["type"] == "function" and c["id"].startswith("call_") for c in calls)
    assert len({c["id"] for c in calls}) == 2
    assert parse_tool_calls(text, seed="a")[1] == calls  # ids are reproducible
    assert parse_tool_calls(text, seed="b")[1][0]["id"] != calls[0]["id"]


def test_what_is_not_a_call_stays_in_the_content():
    from openrft.engines.tools import parse_tool_calls

    assert parse_tool_calls("no call here") == ("no call here", [])
    broken = '<tool_call>\n{"name": "get_weather", "arguments": {"city": </tool_call>'
    assert parse_tool_calls(broken) == (broken, [])
    nameless = '<tool_call>{"arguments": {}}</tool_call>'
    assert parse_tool_calls(nameless) == (nameless, [])
    # an unclosed last call is still a call (as vLLM's hermes parser reads it); "parameters" is read as arguments
    content, calls = parse_tool_calls('<tool_call>\n{"name": "get_time", "parameters": {"zone": "UTC"}}')
    assert content == "" and calls[0]["function"] == {"name": "get_time", "arguments": '{"zone": "UTC"}'}


def test_tools_and_tool_choice_are_checked_with_the_parameter_named():
    from openrft.engines.tools import tool_use

    assert tool_use(None, "auto") is None and tool_use([], None) is None
    use = tool_use(TOOLS, None)
    assert (use.mode, use.prompted, use.constrained, use.parallel) == ("auto", True, False, True)
    forced = tool_use(TOOLS, {"type": "function", "function": {"name": "get_time"}}, False)
    assert (forced.mode, forced.forced, forced.parallel, len(forced.tools)) == ("forced", "get_time", False, 2)
    assert not tool_use(TOOLS, "none").prompted
    allowed = tool_use(TOOLS, {"type": "allowed_tools", "allowed_tools": {
        "mode": "required", "tools": [{"type": "function", "function": {"name": "get_time"}}]}})
    assert allowed.mode == "required" and [t["function"]["name"] for t in allowed.tool_list] == ["get_time"]
    refused = {
        "tool_choice": (TOOLS, {"type": "function", "function": {"name": "nope"}}),
        "tools[1].function.name": ([WEATHER, WEATHER], "auto"),
        "tools[0]": ([{"type": "web_search"}], "auto"),
        "tools[0].function.parameters": ([{"type": "function", "function": {"name": "f", "parameters": "x"}}], None),
    }
    for param, (tools, choice) in refused.items():
        with pytest.raises(EngineError) as caught:
            tool_use(tools, choice)
        assert str(caught.value).startswith(param + ":"), caught.value
    with pytest.raises(EngineError, match="^tool_choice:"):
        tool_use(None, "required")


def test_tool_call_markers_that_are_special_tokens_are_kept(embedded_model):
    from transformers import AutoTokenizer

    from openrft.engines.tools import parse_tool_calls, strip_special_tokens

    tokenizer = AutoTokenizer.from_pretrained(embedded_model)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<tool_call>", "</tool_call>"]})
    ids = tokenizer.encode('<tool_call>{"name": "get_time", "arguments": {"zone": "UTC"}}</tool_call><|im_end|>')
    text = strip_special_tokens(tokenizer, tokenizer.decode(ids, skip_special_tokens=False))
    assert parse_tool_calls(text)[1][0]["function"]["name"] == "get_time"  # <|im_end|> dropped, the markers kept
    assert "<tool_call>" not in tokenizer.decode(ids, skip_special_tokens=True)  # what decoding would lose


# --- the prompt ---

def test_a_template_without_tools_gets_them_in_the_system_prompt(engine):
    from openrft.engines.reasoning import render_prompt
    from openrft.engines.tools import template_supports_tools, tool_use

    assert not template_supports_tools(engine.tokenizer)  # SmolLM2's template ignores `tools`
    history = [{"role": "system", "content": "You are terse."}, *ASK,
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"}]
    text, _ = render_prompt(engine.tokenizer, history, None, tools=tool_use(TOOLS, "auto"))
    system = text.split("<|im_end|>")[0]
    assert system.startswith("<|im_start|>system\nYou are terse.\n\n# Tools")  # one system turn, ours appended
    assert json.dumps(WEATHER) in system and json.dumps(TIME) in system and "<tool_call>" in system
    assert ('<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", '
            '"unit": "celsius"}}\n</tool_call><|im_end|>') in text
    assert "<|im_start|>user\n<tool_response>\n18 C, sunny\n</tool_response><|im_end|>" in text
    plain, _ = render_prompt(engine.tokenizer, ASK, None)
    assert render_prompt(engine.tokenizer, ASK, None, tools=tool_use(TOOLS, "none"))[0] == plain  # none: no tools
    assert "# Tools" not in plain


def test_a_template_that_reads_tools_gets_them_through_apply_chat_template(embedded_model):
    from transformers import AutoTokenizer

    from openrft.engines.reasoning import render_prompt
    from openrft.engines.tools import template_supports_tools, tool_use

    tokenizer = AutoTokenizer.from_pretrained(embedded_model)
    tokenizer.chat_template = (
        "{% if tools %}TOOLS:{% for t in tools %}[{{ t.function.name }}]{% endfor %}|{% endif %}"
        "{% for m in messages %}{{ m.role }}: {{ m.content }}"
        "{% for c in m.tool_calls or [] %} CALL {{ c.function.name }} {{ c.function.arguments.city }}{% endfor %}|"
        "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}")
    assert template_supports_tools(tokenizer)
    call = [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}]
    text, _ = render_prompt(tokenizer, ASK + call, None, tools=tool_use(TOOLS, "auto"))
    # the template renders the tools its own way; arguments reach it as an object
    assert text == ("TOOLS:[get_weather][get_time]|user: What is the weather in Paris right now?|"
                    "assistant:  CALL get_weather Oslo|assistant:")


# --- generation under a required call ---

def test_a_required_call_is_generated_valid_for_its_tool(engine):
    params = SamplingParams(n=4, temperature=1.0, max_tokens=48, seed=4, tools=TOOLS, tool_choice="required",
                            parallel_tool_calls=False)
    samples = engine.generate([ASK], params)[0]
    finished = [s for s in samples if s.finish_reason == "stop"]
    assert len(finished) >= 3, [s.output_text for s in samples]
    for sample in finished:
        assert sample.output_text == "" and len(sample.output_tools) == 1
        call = sample.output_tools[0]
        tool = {"get_weather": WEATHER, "get_time": TIME}[call["function"]["name"]]
        assert schema_errors(tool, call["function"]["arguments"]) == []
        assert sample.grader_sample()["choices"][0]["finish_reason"] == "tool_calls"
        assert sample.output_json is None and sample.parse_error is None

    named = SamplingParams(n=3, temperature=1.0, max_tokens=40, seed=5, tools=TOOLS,
                           tool_choice={"type": "function", "function": {"name": "get_weather"}})
    for sample in engine.generate([ASK], named)[0]:
        if sample.finish_reason == "stop":
            assert [c["function"]["name"] for c in sample.output_tools] == ["get_weather"]


def test_none_and_auto_are_not_constrained(engine):
    for choice in ("none", "auto"):
        params = SamplingParams(n=2, temperature=1.0, max_tokens=8, seed=1, tools=TOOLS, tool_choice=choice)
        samples = engine.generate([ASK], params)[0]
        assert all(s.constraint is None for s in samples), choice  # no grammar: free text


def test_auto_with_a_response_format_allows_the_json_answer_or_calls(engine):
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
        "type": "object", "properties": {"answer": {"type": "string", "maxLength": 30}}, "required": ["answer"],
        "additionalProperties": False}}}
    params = SamplingParams(n=6, temperature=1.0, max_tokens=48, seed=2, tools=TOOLS, tool_choice="auto",
                            response_format=fmt, parallel_tool_calls=False)
    samples = [s for s in engine.generate([ASK], params)[0] if s.finish_reason == "stop"]
    assert len(samples) >= 4
    for sample in samples:
        if sample.output_tools:
            assert sample.output_json is None and sample.parse_error is None
        else:  # the JSON branch (xgrammar admits raw control characters in strings, which json.loads refuses)
            assert isinstance(json.loads(sample.output_text, strict=False)["answer"], str), sample.output_text


def test_the_trainer_replays_the_tool_grammar_and_gets_the_sampler_s_logprobs(engine):
    """Replaying each sample's tool constraint, the trainer's log-probabilities equal the sampler's within 1e-4
    per token; unmasked they are far off (the grammar forces most of a call's tokens)."""
    params = SamplingParams(n=3, temperature=1.0, max_tokens=40, seed=7, tools=TOOLS, tool_choice="required")
    samples = engine.generate([ASK], params)[0]
    assert all(s.constraint is not None and s.constraint.tool_calls for s in samples)
    logp, _, unmasked = trainer_logprobs(engine, samples)
    for i, sample in enumerate(samples):
        sampler = torch.tensor(sample.logprobs)
        assert (logp[i, :len(sample.token_ids)] - sampler).abs().max().item() < 1e-4
        assert (unmasked[i, :len(sample.token_ids)] - sampler).abs().sum().item() > 1.0
    forced = [k for s in samples for k, lp in enumerate(s.logprobs) if lp == 0.0]
    assert forced  # the grammar's fixed text ('<tool_call>\n{"name": "', ...) has log-probability 0


# --- rows' tools in rollouts ---

def test_rows_tools_reach_the_graders_output_tools(engine):
    from openrft.evals.rollout import generate_and_grade
    from openrft.graders import build_grader

    grader = {"type": "string_check", "name": "tool", "operation": "eq",
              "input": "{{ sample.output_tools[0].function.name }}", "reference": "{{ item.expected }}"}
    rows = [{"messages": ASK, "tools": TOOLS, "expected": "get_weather",
             "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            {"messages": [{"role": "user", "content": "What time is it in Tokyo?"}], "tools": [TIME],
             "tool_choice": "required", "parallel_tool_calls": False, "expected": "get_time"},
            {"messages": ASK, "expected": ""}]
    rollouts, _ = generate_and_grade(rows, engine=engine, graders=[build_grader(grader)], criteria=[grader],
                                     params=SamplingParams(n=2, temperature=1.0, max_tokens=48, seed=3))
    for rollout in rollouts[:2]:
        for sample, grade in zip(rollout.samples, rollout.grades[0]):
            if sample.finish_reason == "stop":
                assert sample.output_tools and grade.reward == 1.0, (sample.output_text, grade)
    # a row without tools is sampled without them: the grader cannot read a call
    assert all(not s.output_tools for s in rollouts[2].samples)
    assert all(g.error_kind == "invalid_variable_error" or g.reward == 0 for g in rollouts[2].grades[0])


def test_the_http_engine_passes_tools_through_and_reads_tool_calls(engine):
    from openrft.engines.http import HttpEngine
    from tests.engines.openai_server import make_app, serve

    app = make_app(engine)
    params = SamplingParams(n=2, max_tokens=48, seed=1, tools=TOOLS, tool_choice="required",
                            parallel_tool_calls=False)
    with serve(app) as base_url:
        samples = HttpEngine("smollm2", base_url=base_url, api_key="test-key").generate([ASK], params)[0]
    sent = app.state.requests[0]
    assert (sent["tools"], sent["tool_choice"], sent["parallel_tool_calls"]) == (TOOLS, "required", False)
    assert any(s.output_tools for s in samples)
    for sample in samples:
        for call in sample.output_tools:
            assert call["function"]["name"] in ("get_weather", "get_time") and call["id"].startswith("call_")


def test_a_row_the_engine_could_not_sample_is_refused_by_the_data_check():
    from openrft.data.validate import check_row

    row = {"messages": ASK, "tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}
    [problem] = check_row(row, file="train.jsonl", line=7)
    assert (problem.file, problem.line, problem.field) == ("train.jsonl", 7, "tool_choice")
    assert "nope" in problem.reason
    [problem] = check_row({**row, "tool_choice": "required", "parallel_tool_calls": "no"}, file="t", line=1)
    assert problem.field == "parallel_tool_calls"
    [problem] = check_row({"messages": ASK, "tools": [{"type": "function", "function": {"name": "a b"}}]},
                          file="t", line=1)
    assert problem.field == "tools[0].function.name"
    assert check_row({**row, "tool_choice": "required"}, file="t", line=1) == []
