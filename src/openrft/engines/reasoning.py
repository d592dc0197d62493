"""Reasoning effort: a think-then-answer format with a token budget per level.

`reasoning_effort` None, "default" or "none" means no reasoning segment. "low", "medium" and "high" (and OpenAI's
"minimal", "xhigh", "max", read as low, high, high: `effort_level`) give the model a `<think>…</think>` segment
of at most `BUDGETS[level]` tokens before its answer:

- models with a native thinking format (their chat template knows `enable_thinking`, and `<think>`
  and `</think>` are tokens of their vocabulary, as in Qwen3) use theirs: the template is rendered
  with `enable_thinking=True` (and `False` without a reasoning effort);
- other models get `INSTRUCTION` as a system message (before any system message of the prompt) and
  the assistant turn is opened with `<think>\\n`, so that the model continues inside the segment.

The budget is enforced by the grammar (see structured.py): when it is used up, only the closing tag
may follow. The reasoning text is kept apart from the answer: `split_completion` returns both, and
`output_text`/`output_json` come from the answer alone.
"""

from __future__ import annotations

from openrft.engines.base import EFFORT_LEVELS, EngineError, Messages
from openrft.engines.structured import ThinkFormat
from openrft.engines.tools import ToolUse, prompt_messages

BUDGETS = {"low": 64, "medium": 128, "high": 256}  # most reasoning tokens per level
THINK_BEGIN = "<think>"
THINK_END = "</think>"
INSTRUCTION = ("Think step by step before answering. Write your reasoning between <think> and </think>, "
               "briefly (about {words} words at most), then write only the final answer after </think>.")


def effort_level(effort: str | None) -> str | None:
    """The engine's level (low, medium, high) for one of OpenAI's `reasoning_effort` values (None: no reasoning
    segment)."""
    if effort is None:
        return None
    if effort not in EFFORT_LEVELS:
        raise EngineError(f"reasoning_effort: expected one of {', '.join(EFFORT_LEVELS)}, got {effort!r}")
    return EFFORT_LEVELS[effort]


def _template_text(tokenizer) -> str:
    """The chat template's source (all of a tokenizer's named templates joined), or "" without one."""
    template = getattr(tokenizer, "chat_template", None) or ""
    return " ".join(template.values()) if isinstance(template, dict) else template


def has_native_thinking(tokenizer) -> bool:
    """True when the chat template has its own thinking switch and the think tags are vocabulary tokens."""
    vocab = tokenizer.get_vocab()
    return "enable_thinking" in _template_text(tokenizer) and THINK_BEGIN in vocab and THINK_END in vocab


def template_roles(tokenizer, messages: Messages) -> Messages:
    """OpenAI's `developer` role as `system` for a chat template that does not know it (most open models):
    otherwise the template renders an unfamiliar turn and, for many, adds its default system prompt too."""
    if "developer" in _template_text(tokenizer) or not any(m.get("role") == "developer" for m in messages):
        return messages
    return [{**m, "role": "system"} if m.get("role") == "developer" else m for m in messages]


def render_prompt(tokenizer, messages: Messages, effort: str | None, *,
                  native: bool | None = None, tools: ToolUse | None = None) -> tuple[str, ThinkFormat | None]:
    """The prompt text for a chat prompt, and the think format the completion follows (None: none).

    `native` (whether the model has its own thinking format) is worked out when not given. `tools` (checked,
    engines/tools.py) are passed to a chat template that reads them, else written into the system prompt.
    """
    level = effort_level(effort)
    native = has_native_thinking(tokenizer) if native is None else native
    messages, template_tools = prompt_messages(tokenizer, template_roles(tokenizer, messages), tools)
    options = {} if template_tools is None else {"tools": template_tools}
    if native:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                             enable_thinking=level is not None, **options)
    elif level is not None:
        instruction = {"role": "system", "content": INSTRUCTION.format(words=BUDGETS[level] * 3 // 4)}
        text = tokenizer.apply_chat_template([instruction, *messages], tokenize=False, add_generation_prompt=True,
                                             **options)
        text += THINK_BEGIN + "\n"
    else:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **options)
    if level is None:
        return text, None
    opened = text.rstrip().endswith(THINK_BEGIN)
    return text, ThinkFormat(begin=THINK_BEGIN, end=THINK_END, budget=BUDGETS[level], opened_in_prompt=opened)


def split_completion(text: str, think: ThinkFormat | None) -> tuple[str, str]:
    """(reasoning_text, answer) of a decoded completion. Without a closing tag it is all reasoning."""
    if think is None:
        return "", text.strip()
    body = text
    if not think.opened_in_prompt:
        start = body.find(think.begin)
        body = body[start + len(think.begin):] if start >= 0 else body
    end = body.find(think.end)
    if end < 0:
        return body.strip(), ""
    return body[:end].strip(), body[end + len(think.end):].strip()


def reasoning_token_count(tokenizer, token_ids: list[int], think: ThinkFormat | None) -> int:
    """How many completion tokens belong to the reasoning segment, closing tag included."""
    if think is None or not token_ids:
        return 0
    text = tokenizer.decode(token_ids, skip_special_tokens=False)
    end = text.find(think.end)
    if end < 0:
        return len(token_ids)
    target = end + len(think.end)
    # the shortest prefix of tokens whose text covers the closing tag (binary search: decode is monotone)
    low, high = 1, len(token_ids)
    while low < high:
        mid = (low + high) // 2
        if len(tokenizer.decode(token_ids[:mid], skip_special_tokens=False)) >= target:
            high = mid
        else:
            low = mid + 1
    return low
