"""Structured outputs and reasoning: the grammar is enforced while sampling; reasoning is kept apart."""

from __future__ import annotations

import pytest

from openrft.engines import EngineError, SamplingParams
from openrft.engines.reasoning import BUDGETS, has_native_thinking, render_prompt, split_completion
from openrft.engines.structured import Grammars, ThinkFormat, parse_answer, response_schema, structural_tag

from .conftest import EUROVOC_DOMAINS, EUROVOC_PROMPT, eurovoc_response_format


def test_response_format_shapes():
    schema = eurovoc_response_format()["json_schema"]["schema"]
    assert response_schema(None) is None
    assert response_schema({"type": "text"}) is None
    assert response_schema({"type": "json_object"}) == {"type": "object"}
    assert response_schema(eurovoc_response_format()) == schema
    assert response_schema({"type": "json_schema", "name": "flat", "schema": schema}) == schema  # Azure's shape


@pytest.mark.parametrize("response_format, message", [
    ({"type": "xml"}, "response_format.type"),
    ({"type": "json_schema", "json_schema": {"name": "x"}}, "json_schema.schema: missing"),
    ({"type": "json_schema", "json_schema": {"schema": {"type": "objekt"}}}, "invalid JSON schema"),
    ("json", "expected an object"),
])
def test_bad_response_formats_are_named(response_format, message):
    with pytest.raises(EngineError, match=message):
        response_schema(response_format)


def test_parse_answer_validates_against_the_schema():
    schema = eurovoc_response_format()["json_schema"]["schema"]
    assert parse_answer('{"labels": ["trade", "law"]}', schema) == ({"labels": ["trade", "law"]}, None)
    value, error = parse_answer('{"labels": ["trade"', schema)
    assert value is None and error.startswith("invalid JSON")
    value, error = parse_answer('{"labels": ["cooking"]}', schema)
    assert value is None and "labels/0" in error
    assert parse_answer("anything", None) == (None, None)


def test_the_grammar_admits_reasoning_then_json(engine):
    schema = eurovoc_response_format()["json_schema"]["schema"]
    tag = structural_tag(schema, ThinkFormat(budget=64, opened_in_prompt=True))
    grammars = Grammars(engine.tokenizer, engine.model.get_output_embeddings().weight.shape[0], engine.stop_token_ids)

    def accepts(text: str) -> bool:
        matcher = grammars.matchers(tag, 1)[0]
        return matcher.accept_string(text) and matcher.is_completed()

    assert accepts('Fish quotas are about fisheries.</think>\n{"labels": ["agriculture, forestry and fisheries"]}')
    assert not accepts('{"labels": ["trade"]}')  # the reasoning segment comes first
    assert not accepts('hmm</think>{"labels": ["cooking"]}')  # not a domain
    assert structural_tag(None, None) is None


def test_every_eurovoc_sample_parses_with_the_constraint(engine):
    params = SamplingParams(n=4, temperature=1.0, max_tokens=96, seed=7, response_format=eurovoc_response_format())
    samples = engine.generate([EUROVOC_PROMPT], params)[0]
    for sample in samples:
        assert sample.parse_error is None, sample.output_text
        assert sample.finish_reason == "stop"
        assert set(sample.output_json["labels"]) <= set(EUROVOC_DOMAINS)
        assert sample.reasoning_text == "" and sample.reasoning_tokens == 0


def test_reasoning_is_kept_apart_from_the_json_answer(engine):
    params = SamplingParams(n=2, temperature=1.0, max_tokens=BUDGETS["low"] + 64, seed=2,
                            response_format=eurovoc_response_format(), reasoning_effort="low")
    for sample in engine.generate([EUROVOC_PROMPT], params)[0]:
        assert sample.reasoning_text and "<think>" not in sample.output_text and "</think>" not in sample.output_text
        # the budget, then the closing tag (at most one token per character when the grammar forces it)
        assert 0 < sample.reasoning_tokens <= BUDGETS["low"] + len("</think>")
        assert sample.reasoning_tokens < sample.completion_tokens
        if sample.finish_reason == "stop":
            assert sample.parse_error is None and isinstance(sample.output_json["labels"], list)


def test_reasoning_without_a_response_format_is_cut_at_the_budget(engine):
    question = [{"role": "user", "content": "Why is the sky blue?"}]
    params = SamplingParams(n=2, temperature=1.0, max_tokens=BUDGETS["low"] + 24, seed=9, reasoning_effort="low")
    for sample in engine.generate([question], params)[0]:
        text = engine.tokenizer.decode(sample.token_ids)
        assert "</think>" in text  # closed by the model or forced by the budget
        assert sample.reasoning_tokens <= BUDGETS["low"] + len("</think>")
        assert sample.output_json is None


def test_native_thinking_format_is_used_when_the_template_has_one(engine):
    """A tokenizer whose template has `enable_thinking` and think tokens (as Qwen3's) keeps its own format."""
    import copy

    tokenizer = copy.deepcopy(engine.tokenizer)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<think>", "</think>"]})
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n"
        "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}")
    assert has_native_thinking(tokenizer) and not has_native_thinking(engine.tokenizer)
    text, think = render_prompt(tokenizer, [{"role": "user", "content": "hi"}], "high")
    assert think == ThinkFormat(budget=BUDGETS["high"], opened_in_prompt=False) and "Think step by step" not in text
    text, think = render_prompt(tokenizer, [{"role": "user", "content": "hi"}], None)
    assert think is None and text.endswith("<think>\n\n</think>\n\n")
    assert split_completion("<think>plan</think>\n\nanswer", ThinkFormat(opened_in_prompt=False)) == ("plan", "answer")


def test_the_instruction_format_for_models_without_one(engine):
    text, think = render_prompt(engine.tokenizer, [{"role": "user", "content": "hi"}], "medium")
    assert text.endswith("<think>\n") and "Think step by step" in text
    assert think == ThinkFormat(budget=BUDGETS["medium"], opened_in_prompt=True)
    assert render_prompt(engine.tokenizer, [{"role": "user", "content": "hi"}], "default")[1] is None
    assert split_completion("a plan</think> the answer", think) == ("a plan", "the answer")
    assert split_completion("a plan cut short", think) == ("a plan cut short", "")


def test_a_ref_to_nothing_is_refused_at_the_door_and_never_crashes_a_parse():
    """A `$ref` that names no part of the schema is refused by `response_schema` (found by the parser fuzz test:
    it used to raise a referencing error from `parse_answer`); refs that resolve are accepted."""
    from openrft.engines import EngineError
    from openrft.engines.structured import parse_answer, response_schema

    def format_of(schema):
        return {"type": "json_schema", "json_schema": {"name": "a", "schema": schema, "strict": True}}

    with pytest.raises(EngineError, match=r"\$ref '#/nowhere' points to nothing"):
        response_schema(format_of({"$ref": "#/nowhere"}))
    with pytest.raises(EngineError, match="points to nothing"):
        response_schema(format_of({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}))
    schema = response_schema(format_of({"$defs": {"n": {"type": "integer"}}, "type": "object",
                                        "properties": {"a": {"$ref": "#/$defs/n"}, "b": {"$ref": "#"}}}))
    assert parse_answer('{"a": 3}', schema) == ({"a": 3}, None)
    assert parse_answer('{"a": "x"}', schema)[1].startswith("does not match the schema at a")
    assert response_schema(format_of({"$ref": "#nobody"})) == {"$ref": "#nobody"}  # an anchor: not checked there
    value, error = parse_answer("null", {"$ref": "#nobody"})
    assert value is None and error.startswith("cannot check against the schema")
