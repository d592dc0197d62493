"""Structured outputs: OpenAI's `response_format`, enforced while sampling by an xgrammar grammar.

One grammar describes the whole completion as an xgrammar *structural tag*:

- with `reasoning_effort`: a `<think>` segment of free text (at most the level's token budget; when
  the budget is used up the grammar admits only the closing tag), then the answer;
- the answer: the JSON of the `json_schema` response_format (at most `JSON_MAX_WHITESPACE` whitespace
  characters in a row, so that a small model cannot wander off into blank space), or free text; with tools,
  tool calls (only them when a call is required, or as an alternative to the JSON answer: `answer_format`,
  engines/tools.py).

The same structural tag drives the transformers engine (a `GrammarMatcher` per sample masks the
logits at each step) and vLLM (`StructuredOutputsParams(structural_tag=...)`). A completion is
parsed back with `parse_answer`: `json.loads`, then validation against the schema (jsonschema), so
that `output_json` is set only for answers that match the schema, and `parse_error` says why not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from openrft.engines.base import EngineError
from openrft.engines.tools import ToolUse, calls_format

JSON_MAX_WHITESPACE = 2  # consecutive whitespace characters the JSON grammar admits between tokens


@dataclass(frozen=True)
class ThinkFormat:
    """How a model writes its reasoning: `begin` text `end`, then the answer."""

    begin: str = "<think>"
    end: str = "</think>"
    budget: int = 128  # most tokens inside the segment (the closing tag is forced after them)
    opened_in_prompt: bool = True  # the prompt already ends with `begin` (the model continues inside it)


def response_schema(response_format: dict | None) -> dict | None:
    """The JSON schema a response_format asks for: None for free text, {} for any JSON object.

    Accepts OpenAI's shapes `{"type": "text"}`, `{"type": "json_object"}` and
    `{"type": "json_schema", "json_schema": {"name": ..., "schema": {...}, "strict": true}}`
    (and Azure's flat `{"type": "json_schema", "name": ..., "schema": {...}}`).
    """
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise EngineError(f"response_format: expected an object, got {type(response_format).__name__}")
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind != "json_schema":
        raise EngineError(f"response_format.type: expected 'text', 'json_object' or 'json_schema', got {kind!r}")
    spec = response_format.get("json_schema", response_format)
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        raise EngineError("response_format.json_schema.schema: missing (expected a JSON schema object)")
    schema = spec["schema"]
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = ".".join(str(p) for p in exc.path) or "(root)"
        raise EngineError(f"response_format.json_schema.schema: invalid JSON schema at {path}: {exc.message}") from exc
    except RecursionError:
        raise EngineError("response_format.json_schema.schema: nested too deeply") from None
    for ref in _local_refs(schema):
        if not _resolves(schema, ref):
            raise EngineError(f"response_format.json_schema.schema: $ref {ref!r} points to nothing in the schema")
    return schema


def _local_refs(schema: Any) -> list[str]:
    """Every `$ref` of the schema that is a JSON pointer into it ("#", "#/$defs/x"; not an anchor such as "#a"),
    found iteratively (schemas may be deep)."""
    refs, stack = [], [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and (ref == "#" or ref.startswith("#/")):
                refs.append(ref)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return refs


def _resolves(schema: dict, ref: str) -> bool:
    """Whether a local `$ref` (a JSON pointer after "#", RFC 6901) names a part of the schema."""
    node: Any = schema
    for part in filter(None, ref[1:].split("/")):
        part = unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def check_grammar(schema: dict | None) -> None:
    """Raise EngineError when xgrammar cannot build a grammar for `schema` (checked without a tokenizer, so a
    job is refused before any model is loaded)."""
    if schema is None:
        return
    import xgrammar as xgr

    try:
        xgr.Grammar.from_json_schema(json.dumps(schema), max_whitespace_cnt=JSON_MAX_WHITESPACE)
    except Exception as exc:  # xgrammar reports unsupported schema features here
        raise EngineError(f"response_format: cannot build a grammar for this schema: {exc}") from exc


def answer_format(schema: dict | None, tools: ToolUse | None = None) -> dict | None:
    """The structural-tag format of the answer (None: free text). With tools (engines/tools.py): tool calls
    only when a call is required; the JSON answer or tool calls under tool_choice "auto" with a schema."""
    json_answer = None if schema is None else {"type": "json_schema", "json_schema": schema,
                                               "max_whitespace_cnt": JSON_MAX_WHITESPACE}
    if tools is not None and tools.constrained:
        return calls_format(tools)
    if tools is not None and tools.prompted and json_answer is not None:
        return {"type": "or", "elements": [json_answer, calls_format(tools)]}
    return json_answer


def structural_tag(schema: dict | None, think: ThinkFormat | None, tools: ToolUse | None = None) -> dict | None:
    """The xgrammar structural tag for a completion, or None when nothing needs constraining."""
    answer = answer_format(schema, tools)
    if answer is None and think is None:
        return None
    if answer is None:
        answer = {"type": "any_text"}
    if think is None:
        return {"type": "structural_tag", "format": answer}
    segment = {"type": "tag", "begin": "" if think.opened_in_prompt else think.begin,
               "content": {"type": "any_text", "max_tokens": think.budget, "excludes": [think.begin, think.end]},
               "end": think.end}
    # The model may put a little whitespace between the closing tag and the answer.
    separator = {"type": "regex", "pattern": r"\s{0,2}"}
    return {"type": "structural_tag", "format": {"type": "sequence", "elements": [segment, separator, answer]}}


def parse_answer(text: str, schema: dict | None) -> tuple[Any, str | None]:
    """(output_json, parse_error) of an answer: the parsed object when it is JSON matching the schema."""
    if schema is None:
        return None, None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    from jsonschema import Draft202012Validator
    from referencing.exceptions import Unresolvable

    try:
        errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    except RecursionError:
        return None, "does not match the schema: nested too deeply to check"
    except Unresolvable as exc:  # a $ref that response_schema could not check (an anchor, another document)
        return None, f"cannot check against the schema: {exc}"
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        return None, f"does not match the schema at {where}: {first.message}"
    return value, None


class Grammars:
    """Compiles structural tags for one tokenizer (once each) and hands out per-sample matchers."""

    def __init__(self, tokenizer, vocab_size: int, stop_token_ids: list[int]):
        import xgrammar as xgr

        self._xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
        self.compiler = xgr.GrammarCompiler(info)
        self.vocab_size = vocab_size
        self._compiled = lru_cache(maxsize=64)(self._compile)

    def _compile(self, tag_json: str):
        try:
            return self.compiler.compile_structural_tag(tag_json)
        except Exception as exc:  # xgrammar reports unsupported schema features here
            raise EngineError(f"response_format: cannot build a grammar for this schema: {exc}") from exc

    def matchers(self, tag: dict, count: int) -> list:
        compiled = self._compiled(json.dumps(tag, sort_keys=True))
        return [self._xgr.GrammarMatcher(compiled) for _ in range(count)]

    def allocate_bitmask(self, rows: int):
        return self._xgr.allocate_token_bitmask(rows, self.vocab_size)

    def apply_bitmask(self, logits, bitmask) -> None:
        self._xgr.apply_token_bitmask_inplace(logits, bitmask.to(logits.device, non_blocking=True))
