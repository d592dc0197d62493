"""What a task is: a loader that renders a prompt into OpenAI RFT rows, plus the response_format and
grader that go with them, so that a user starts from a working example.

The prompt lives in the rows (`messages`), so training, evals and any RFT service read the same text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from openrft.errors import InputError

SPLITS = ("train", "validation")


class TaskError(InputError, ValueError):
    """A task that cannot be built or loaded (unknown name, missing data, bad option)."""


@dataclass
class Task:
    """A task: name, label space, response_format, grader (ready-made grader JSON) and a row loader.

    `loader(split, **options)` returns the rows of one split; `rows()` checks them like a JSONL file.
    `label_key` names the reference field with the labels (None for non-classification tasks) and
    `group_key` the field whose rows must stay on one side of a split. `prompts` names the task's prompt
    variants (`rows(split, prompt=name)`; `openrft eval --prompt A --prompt B` compares them).
    """

    name: str
    description: str
    loader: Callable[..., list[dict]]
    grader_name: str
    labels: list[str] | None = None
    response_format: dict | None = None
    reasoning_effort: str | None = None
    label_key: str | None = "labels"
    group_key: str | None = "id"
    source: str = ""  # where the rows come from, in words
    options: dict = field(default_factory=dict)  # the loader's options and their defaults, for help texts
    prompts: tuple[str, ...] = ()  # named prompt variants (the loader's `prompt` option), the default first

    @property
    def grader(self) -> dict:
        """The task's grader JSON (a ready-made grader of `openrft.graders`)."""
        from openrft.graders import ready_grader

        return ready_grader(self.grader_name)

    def rows(self, split: str = "train", **options) -> list[dict]:
        """The rows of `split` ("train" or "validation") in OpenAI RFT format, checked."""
        from openrft.data.validate import validate_rows

        if split not in SPLITS:
            raise TaskError(f"task {self.name}: unknown split {split!r} (use one of {', '.join(SPLITS)})")
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise TaskError(f"task {self.name}: unknown option(s) {', '.join(unknown)} "
                            f"(options: {', '.join(sorted(self.options)) or 'none'})")
        rows = self.loader(split, **options)
        return validate_rows(rows, source=f"task {self.name} ({split})")


def json_labels_format(name: str, labels: list[str], *, min_items: int | None = None,
                       max_items: int | None = None, unique: bool = True) -> dict:
    """OpenAI's strict json_schema response_format for `{"labels": [<one of labels>, ...]}`.

    `min_items` / `max_items` bound the list (JSON schema `minItems` / `maxItems`, which OpenAI's strict mode
    and the grammar both enforce). A small model otherwise often answers `[]` or lists labels until it runs
    out of tokens; a bound that matches what the prompt asks for keeps every answer finished and gradable.
    """
    array: dict = {"type": "array", "items": {"type": "string", "enum": list(labels)}}
    if unique:  # a label set: the engine's constraint forbids repeating a label (openrft.engines.constraints)
        array["uniqueItems"] = True
    if min_items is not None:
        array["minItems"] = min_items
    if max_items is not None:
        array["maxItems"] = max_items
    return {
        "type": "json_schema",
        "json_schema": {
            "name": name,
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"labels": array},
                "required": ["labels"],
                "additionalProperties": False,
            },
        },
    }


@lru_cache(maxsize=1)
def prompt_tokenizer():
    """The embedded model's tokenizer: prompt lengths are counted and cut with it."""
    from openrft.models import load_tokenizer

    return load_tokenizer("default")


CUT_MARKER = " [...]"


def fit_text(text: str, budget: int, tokenizer) -> tuple[str, int, bool]:
    """Cut `text` to about `budget` tokens, marker included: (text, tokens before cutting, whether it was cut).

    A cut text ends with " [...]" so that the model sees the act goes on.
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= budget:
        return text, len(ids), False
    keep = max(0, budget - token_count(CUT_MARKER, tokenizer))
    return tokenizer.decode(ids[:keep], skip_special_tokens=True).rstrip() + CUT_MARKER, len(ids), True


def token_count(text: str, tokenizer) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])
