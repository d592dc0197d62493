"""A scripted engine for the doctor's check tests: it answers from a list of texts, so that a test can build
a failing situation exactly (answers a binary grader splits, answers that always miss). The graders, the eval
path and the checks under test are the real ones; the tests that need the model use the embedded one."""

from __future__ import annotations

import itertools
import json

from openrft.engines.base import Sample, SamplingParams


class ScriptedEngine:
    """An Engine whose answers cycle through `answers` (parsed as JSON when a response_format is given)."""

    model_name = "scripted"

    def __init__(self, answers: list[str]):
        self.answers = itertools.cycle(answers)

    def generate(self, prompts, params: SamplingParams) -> list[list[Sample]]:
        out = []
        for i, _ in enumerate(prompts):
            group = []
            for _ in range(params.n):
                text = next(self.answers)
                parsed, error = None, None
                if params.response_format:
                    try:
                        parsed = json.loads(text)
                    except ValueError as exc:
                        error = str(exc)
                group.append(Sample(prompt_index=i, output_text=text, output_json=parsed, parse_error=error,
                                    token_ids=[1] * len(text.split()), completion_tokens=len(text.split()),
                                    prompt_tokens=10, model=self.model_name))
            out.append(group)
        return out


def rows(n: int, **fields) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"Question {i}?"}], "id": f"q{i}", **fields} for i in range(n)]
