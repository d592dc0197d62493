"""Function tools: OpenAI's `tools` / `tool_choice` rendered into the prompt, parsed out of the answer, and
enforced by a grammar when a call is required.

The format is Hermes / Qwen's, the one most open chat templates and vLLM's `hermes` tool parser use:

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

- **Prompt.** A chat template that reads `tools` (Qwen2.5, Qwen3, Hermes, Llama 3.1, ...) gets them through
  `tokenizer.apply_chat_template(..., tools=...)` and renders them its own way. A template that does not (the
  embedded SmolLM2's) gets the tool schemas written into the system prompt in Qwen's words (`SYSTEM_TOOLS`),
  assistant turns with `tool_calls` written as `<tool_call>` blocks and `tool` messages as user turns holding
  `<tool_response>` blocks, as Qwen's template renders them (`prompt_messages`).
- **Parsing.** `parse_tool_calls` takes every `<tool_call>{...}</tool_call>` block of an answer (and an unclosed
  last one, as vLLM's parser does) whose JSON has a string `name`; `arguments` (or `parameters`) become a JSON
  string, as in OpenAI's `tool_calls`. The rest of the text is the answer's content. A block that is not such
  JSON stays in the content.
- **Grammar.** `tool_choice: "required"` or a named function constrains the answer to tool calls only (one with
  `parallel_tool_calls: false` or a named function, else one or more separated by newlines); each call's
  arguments follow its tool's `parameters` schema (any JSON object when the tool says `strict: false` or gives
  no parameters). This is an xgrammar structural-tag format (`calls_format`) that structured.py places after
  the reasoning segment, so the sampler and the trainer's replay use one grammar (constraints.py).
  `"auto"` leaves free text unconstrained (a call the model writes is parsed); with a json_schema
  response_format, `"auto"` allows either the JSON answer or tool calls. `"none"` leaves the tools out of the
  prompt and parses nothing.

`tool_choice` and the tools are checked with xgrammar's `normalize_tool_choice` (OpenAI's shapes).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from openrft.engines.base import EngineError, Messages

CALL_BEGIN = "<tool_call>"
CALL_END = "</tool_call>"
_NAME_PREFIX = CALL_BEGIN + '\n{"name": "'
_ARGUMENTS_PREFIX = '", "arguments": '
_CALL_SUFFIX = "}\n" + CALL_END
CALL_SEPARATOR = "\n"
ARGUMENTS_MAX_WHITESPACE = 2  # as structured.JSON_MAX_WHITESPACE

SYSTEM_TOOLS = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}}\n</tool_call>"
)

_CALL = re.compile(re.escape(CALL_BEGIN) + r"\s*(.*?)\s*" + re.escape(CALL_END) + "|" + re.escape(CALL_BEGIN)
                   + r"\s*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class ToolUse:
    """The tools of one call and how they may be used: OpenAI's `tools`, `tool_choice` and
    `parallel_tool_calls`, checked. `mode` is "none", "auto", "required" or "forced" (a named function)."""

    tools: tuple[str, ...]  # each tool as JSON, in the given key order (hashable)
    mode: str
    forced: str | None = None  # the named function of tool_choice
    parallel: bool = True

    @property
    def tool_list(self) -> list[dict]:
        return [json.loads(tool) for tool in self.tools]

    @property
    def prompted(self) -> bool:
        """Whether the tools go into the prompt (and calls are parsed from the answer)."""
        return self.mode != "none" and bool(self.tools)

    @property
    def constrained(self) -> bool:
        """Whether the answer must be tool calls (the grammar forces them)."""
        return self.mode in ("required", "forced")


def tool_use(tools: list[dict] | None, tool_choice: str | dict | None = None,
             parallel_tool_calls: bool | None = None) -> ToolUse | None:
    """The checked ToolUse of a request, or None when it has no tools. Raises EngineError naming the parameter."""
    if tool_choice is not None and not tools and tool_choice not in ("none", "auto"):
        raise EngineError("tool_choice: a tool_choice other than none/auto needs tools")
    if not tools:
        return None
    check_tools(tools)
    from xgrammar.builtin_structural_tag import normalize_tool_choice

    try:
        # xgrammar's annotations list its typed params; it validates plain dicts at runtime (errors caught below)
        functions, _, simplified = normalize_tool_choice(tools, tool_choice)  # type: ignore[arg-type]
    except Exception as exc:  # pydantic ValidationError or ValueError from xgrammar
        raise EngineError(f"tool_choice: {_first_line(exc)}") from exc
    mode = "none" if tool_choice == "none" else simplified
    forced = functions[0].function.name if mode == "forced" else None
    # The prompt lists every tool, except those an `allowed_tools` choice leaves out; a named function is the
    # only one the grammar admits, the others stay listed.
    allowed = {f.function.name for f in functions}
    kept = tuple(json.dumps(tool) for tool in tools
                 if mode in ("none", "forced") or tool["function"]["name"] in allowed)
    return ToolUse(kept, mode, forced, True if parallel_tool_calls is None else bool(parallel_tool_calls))


def check_tools(tools: Any) -> None:
    """Raise EngineError naming `tools[i]...` unless `tools` is a list of OpenAI function tools with unique names."""
    if not isinstance(tools, list):
        raise EngineError(f"tools: expected a list of function tools, got {type(tools).__name__}")
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            raise EngineError(f'tools[{i}]: expected {{"type": "function", "function": {{"name": ...}}}} '
                              "(only function tools are supported)")
        function = tool["function"]
        name = function.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", name):
            raise EngineError(f"tools[{i}].function.name: expected 1-64 letters, digits, '_', '.' or '-', got {name!r}")
        if name in seen:
            raise EngineError(f"tools[{i}].function.name: duplicate tool name {name!r}")
        seen.add(name)
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise EngineError(f"tools[{i}].function.parameters: expected a JSON schema object")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- prompt ---

def template_supports_tools(tokenizer) -> bool:
    """True when the chat template reads a `tools` variable (it renders the tools its own way)."""
    from openrft.engines.reasoning import _template_text

    return re.search(r"\btools\b", _template_text(tokenizer)) is not None


def prompt_messages(tokenizer, messages: Messages, use: ToolUse | None) -> tuple[Messages, list[dict] | None]:
    """The messages to render and the `tools` to pass to apply_chat_template (None: pass none).

    Assistant `tool_calls` get their arguments as objects (chat templates serialise them with `tojson`). A
    template without tools support gets the fallback described in the module docstring.
    """
    messages = [_template_message(m) for m in messages]
    tools = use.tool_list if use is not None and use.prompted else None
    native = template_supports_tools(tokenizer)
    if native:
        return messages, tools
    if not any(m.get("tool_calls") or m.get("role") == "tool" for m in messages) and not tools:
        return messages, None
    rendered: Messages = []
    previous = None
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            blocks = [call_text(c["function"]["name"], c["function"].get("arguments")) for c in message["tool_calls"]]
            content = "\n".join(([message["content"]] if message.get("content") else []) + blocks)
            rendered.append({"role": "assistant", "content": content})
        elif role == "tool":  # consecutive tool messages share one user turn, as in Qwen's template
            block = f"<tool_response>\n{message.get('content') or ''}\n</tool_response>"
            if previous == "tool":
                rendered[-1] = {**rendered[-1], "content": rendered[-1]["content"] + "\n" + block}
            else:
                rendered.append({"role": "user", "content": block})
        else:
            rendered.append({k: v for k, v in message.items() if k not in ("tool_calls", "tool_call_id", "name")})
        previous = role
    if tools:
        listing = SYSTEM_TOOLS.format(tools="\n".join(json.dumps(t, ensure_ascii=False) for t in tools))
        first = rendered[0] if rendered else {}
        if first.get("role") in ("system", "developer") and isinstance(first.get("content"), str):
            rendered[0] = {**rendered[0], "content": rendered[0]["content"] + "\n\n" + listing}
        else:
            rendered.insert(0, {"role": "system", "content": listing})
    return rendered, None


def _template_message(message: dict) -> dict:
    calls = message.get("tool_calls")
    if not calls:
        return message
    out = []
    for call in calls:
        function = dict(call.get("function") or {})
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                function["arguments"] = json.loads(arguments)
            except json.JSONDecodeError:
                pass  # left as the string it is
        out.append({**call, "function": function})
    return {**message, "tool_calls": out}


def call_text(name: str, arguments: Any) -> str:
    """One call in the Hermes format (what the grammar makes the model write)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            pass
    return f'{_NAME_PREFIX}{name}{_ARGUMENTS_PREFIX}{json.dumps(arguments, ensure_ascii=False)}{_CALL_SUFFIX}'


# --- parsing ---

def parse_tool_calls(text: str, *, seed: str = "") -> tuple[str, list[dict]]:
    """(content, tool_calls) of an answer: OpenAI's `tool_calls` (`{id, type, function: {name, arguments}}`,
    arguments a JSON string) and the text outside the calls. `seed` makes the call ids reproducible (a call's id
    is a hash of the seed, its position and its text)."""
    calls: list[dict] = []
    kept: list[str] = []
    position = 0
    for match in _CALL.finditer(text):
        body = match.group(1) if match.group(1) is not None else match.group(2)
        call = _call(body)
        if call is None:
            continue  # not a call: the block stays in the content
        kept.append(text[position:match.start()])
        position = match.end()
        digest = hashlib.blake2b(f"{seed}:{len(calls)}:{body}".encode(), digest_size=12).hexdigest()
        calls.append({"id": f"call_{digest}", "type": "function", "function": call})
    kept.append(text[position:])
    return "".join(kept).strip(), calls


def strip_special_tokens(tokenizer, text: str) -> str:
    """`text` without the tokenizer's special tokens, except the tool-call markers (special tokens of some
    models, which the answer's calls are found by)."""
    for token in tokenizer.all_special_tokens:
        if token not in (CALL_BEGIN, CALL_END):
            text = text.replace(token, "")
    return text.strip()


def answer_and_calls(answer: str, use: ToolUse | None, *, seed: str = "") -> tuple[str, list[dict]]:
    """An answer's text and its tool calls (none unless tools were offered)."""
    if use is None or not use.prompted:
        return answer, []
    return parse_tool_calls(answer, seed=seed)


def _call(body: str) -> dict | None:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    return {"name": data["name"], "arguments": json.dumps(arguments, ensure_ascii=False)}


# --- grammar ---

def arguments_schema(tool: dict) -> dict:
    """The JSON schema a tool's arguments are generated under: its `parameters`, or any object when it gives
    none or says `strict: false`."""
    function = tool["function"]
    if function.get("strict") is False or function.get("parameters") is None:
        return {"type": "object"}
    return function["parameters"]


def calls_format(use: ToolUse) -> dict:
    """The xgrammar structural-tag format of an answer made of tool calls only (at least one)."""
    tags = []
    for tool in use.tool_list:
        name = tool["function"]["name"]
        if use.forced is not None and name != use.forced:
            continue
        tags.append({"type": "tag", "begin": _NAME_PREFIX + name + _ARGUMENTS_PREFIX,
                     "content": {"type": "json_schema", "json_schema": arguments_schema(tool),
                                 "max_whitespace_cnt": ARGUMENTS_MAX_WHITESPACE},
                     "end": _CALL_SUFFIX})
    single = use.forced is not None or not use.parallel
    return {"type": "tags_with_separator", "tags": tags, "separator": CALL_SEPARATOR, "at_least_one": True,
            "stop_after_first": single}


def check_tools_grammar(use: ToolUse | None) -> None:
    """Raise EngineError naming the tool when xgrammar cannot build a grammar for its parameters."""
    if use is None:
        return
    import xgrammar as xgr

    for i, tool in enumerate(use.tool_list):
        try:
            xgr.Grammar.from_json_schema(json.dumps(arguments_schema(tool)),
                                         max_whitespace_cnt=ARGUMENTS_MAX_WHITESPACE)
        except Exception as exc:
            raise EngineError(f"tools[{i}].function.parameters: cannot build a grammar for this schema: "
                              f"{_first_line(exc)}") from exc
