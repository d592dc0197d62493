"""`GivenSamples`: an engine that answers with samples it was given (an evals `jsonl` data source's `sample`
fields), nothing generated; `given_sample` reads one such field (OpenAI's `output_text` / `output_json` /
`output_tools`, or a chat completion's `choices`)."""

from __future__ import annotations

import json

from openrft.engines.base import Sample, SamplingParams


class GivenSamples:
    """An engine that answers each prompt with the next given sample, in order (nothing is generated)."""

    def __init__(self, samples: list[Sample]):
        self.model_name = "(given samples)"
        self._samples = list(samples)

    def generate(self, prompts, params: SamplingParams) -> list[list[Sample]]:  # noqa: ARG002 (engine interface)
        batch, self._samples = self._samples[:len(prompts)], self._samples[len(prompts):]
        return [[sample] for sample in batch]


def given_sample(index: int, sample: dict | None) -> Sample:
    """The Sample of prompt `index` from a data source item's `sample` field."""
    sample = sample or {}
    text = sample.get("output_text")
    if text is None and sample.get("choices"):
        text = ((sample["choices"][0] or {}).get("message") or {}).get("content")
    output_json = sample.get("output_json")
    if output_json is None and text:
        try:
            output_json = json.loads(text)
        except ValueError:
            output_json = None
    tools = sample.get("output_tools")
    if tools is None and sample.get("choices"):
        tools = ((sample["choices"][0] or {}).get("message") or {}).get("tool_calls")
    return Sample(prompt_index=index, output_text=text or "", output_json=output_json,
                  output_tools=tools if isinstance(tools, list) else [], model=sample.get("model", ""))
