"""The row formats of OpenAI's three fine-tuning methods, and their checks (file, line, field, reason).

- `reinforcement` (RFT): `{"messages": [... ending with the user's turn], "tools"?, <reference fields>}`
  (checked by `openrft.data.validate.check_row`);
- `supervised` (SFT): `{"messages": [system/developer/user/assistant/tool ...], "tools"?,
  "parallel_tool_calls"?}`. The loss is on the assistant messages; one with `"weight": 0` is context only.
  A row needs at least one assistant message that is trained on (weight 1, the default);
- `dpo`: `{"input": {"messages": [...], "tools"?, "parallel_tool_calls"?}, "preferred_output": [assistant
  message], "non_preferred_output": [assistant message]}`.

Other top-level keys are allowed in every format (a group key such as `celex_id`, an id): training ignores them.
`detect_method(row)` tells the formats apart by their shape (for `openrft data check` and uploads).
"""

from __future__ import annotations

from typing import Any, Literal

Method = Literal["reinforcement", "supervised", "dpo"]
METHODS = ("reinforcement", "supervised", "dpo")
DPO_OUTPUTS = ("preferred_output", "non_preferred_output")


def detect_method(row: Any) -> Method:
    """The method whose format a row has: `dpo` for preference rows, `supervised` for a conversation that ends
    with an assistant message, else `reinforcement` (a prompt that ends with the user's turn)."""
    if not isinstance(row, dict):
        return "reinforcement"
    if "input" in row or any(key in row for key in DPO_OUTPUTS):
        return "dpo"
    messages = row.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict) \
            and messages[-1].get("role") == "assistant":
        return "supervised"
    return "reinforcement"


def last_user_text(row: dict) -> str:
    """The text of a row's last user message (a list of content parts: its text parts, joined by newlines)."""
    content = next((m.get("content") for m in reversed(row.get("messages") or []) if m.get("role") == "user"), "")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def trained_on(message: dict) -> bool:
    """Whether an assistant message of an SFT row is a target of the loss (OpenAI's `weight`, default 1)."""
    return message.get("role") == "assistant" and message.get("weight", 1) != 0


def check_sft_row(row: dict, add) -> None:
    """`add(field, reason)` for each problem of an SFT row."""
    from openrft.data.validate import _check_messages, _check_tools, _kind

    if "messages" not in row:
        add("messages", "missing (an SFT row is a conversation: a list of messages with assistant answers)")
        return
    messages = row["messages"]
    _check_messages(messages, add, allow_system=True, last_user=False)
    if isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages):
        if not any(m.get("role") == "assistant" for m in messages):
            add("messages", "no assistant message: an SFT row needs the assistant answer to train on")
        elif not any(trained_on(m) for m in messages):
            add("messages", "every assistant message has weight 0: nothing to train on in this row")
    _check_tool_keys(row, "", add, _check_tools, _kind)


def check_dpo_row(row: dict, add) -> None:
    """`add(field, reason)` for each problem of a DPO (preference) row."""
    from openrft.data.validate import _check_messages, _check_tools, _kind

    prompt = row.get("input")
    if prompt is None:
        add("input", 'missing (a DPO row is {"input": {"messages": [...]}, "preferred_output": [...], '
                     '"non_preferred_output": [...]})')
    elif not isinstance(prompt, dict):
        add("input", f"must be an object with 'messages', got {_kind(prompt)}")
    else:
        for key in sorted(set(prompt) - {"messages", "tools", "parallel_tool_calls"}):
            add(f"input.{key}", "not a key of a DPO input (messages, tools, parallel_tool_calls)")
        if "messages" not in prompt:
            add("input.messages", "missing")
        else:
            _check_messages(prompt["messages"], add, field="input.messages", allow_system=True, last_user=False)
        _check_tool_keys(prompt, "input.", add, _check_tools, _kind)
    for key in DPO_OUTPUTS:
        if key not in row:
            add(key, "missing: a DPO row needs a preferred and a non-preferred assistant answer")
            continue
        output = row[key]
        if not isinstance(output, list) or not output:
            add(key, f"must be a non-empty list of assistant messages, got {_kind(output)}")
            continue
        _check_messages(output, add, field=key, allow_system=True, last_user=False)
        for i, message in enumerate(output):
            if isinstance(message, dict) and message.get("role") not in ("assistant", None):
                add(f"{key}[{i}].role", f"an output message must be the assistant's, got {message.get('role')!r}")
    if all(isinstance(row.get(k), list) and row.get(k) for k in DPO_OUTPUTS) \
            and row["preferred_output"] == row["non_preferred_output"]:
        add("non_preferred_output", "the same as preferred_output: a pair of identical answers teaches nothing")


def _check_tool_keys(holder: dict, prefix: str, add, check_tools, kind) -> None:
    if "tools" in holder:
        check_tools(holder["tools"], lambda field, reason: add(prefix + field, reason))
    if "parallel_tool_calls" in holder and not isinstance(holder["parallel_tool_calls"], bool):
        add(f"{prefix}parallel_tool_calls", f"must be true or false, got {kind(holder['parallel_tool_calls'])}")
