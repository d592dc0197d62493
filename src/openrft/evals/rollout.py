"""The one sampling-and-grading path, shared by evals and by the trainer.

rows ─► prompts (the row's `messages` and `tools`) ─► engine (n samples each) ─► grader(s) ─► Rollouts

Training reuses exactly this function for its rollouts and its validation, which is what makes the
numbers of a base model, a checkpoint and an external model comparable: one rendering of prompts, one
sampling path, one grading path.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from openrft import faults
from openrft.data.validate import RESERVED_KEYS
from openrft.engines.base import Engine, Sample, SamplingParams


def grader_item(row: dict) -> dict:
    """The `item` namespace of the graders: every non-reserved key of the row (OpenAI RFT §2.1)."""
    return {key: value for key, value in row.items() if key not in RESERVED_KEYS}


def prompt_of(row: dict) -> list[dict]:
    return row["messages"]


def row_params(row: dict, params: SamplingParams) -> SamplingParams:
    """The sampling parameters of a row: `params` with the row's `tools` (OpenAI RFT rows carry their tool
    set), and its `tool_choice` / `parallel_tool_calls` when it has them (keys of the row that openrft reads
    as OpenAI's chat parameters; they stay visible to the graders as `item.tool_choice`, ...)."""
    if not row.get("tools"):
        return params
    return replace(params, tools=row["tools"], tool_choice=row.get("tool_choice", params.tool_choice),
                   parallel_tool_calls=row.get("parallel_tool_calls", params.parallel_tool_calls))


def _generate(engine: Engine, batch: list[dict], params: SamplingParams) -> list[list[Sample]]:
    """The samples of a batch of rows; rows with different tools (or tool_choice) go in separate engine calls
    (an engine call has one tool set), in the batch's order."""
    keyed: dict[str, list[int]] = {}
    for i, row in enumerate(batch):
        p = row_params(row, params)
        keyed.setdefault(json.dumps([p.tools, p.tool_choice, p.parallel_tool_calls]), []).append(i)
    if len(keyed) == 1:
        return engine.generate([prompt_of(row) for row in batch], row_params(batch[0], params))
    groups: list[list[Sample]] = [[] for _ in batch]
    for indices in keyed.values():
        for i, samples in zip(indices, engine.generate([prompt_of(batch[i]) for i in indices],
                                                       row_params(batch[indices[0]], params))):
            groups[i] = samples
    return groups


@dataclass
class Rollout:
    """One row, its group of samples and their grades (grades[c][s]: criterion c, sample s)."""

    index: int
    row: dict
    samples: list[Sample]
    grades: list[list[Any]]  # per criterion, per sample: openrft.graders Grade
    criteria: list[dict] = field(default_factory=list)

    @property
    def rewards(self) -> list[float]:
        """The reward of each sample: the first criterion's (the RFT grader when there is one)."""
        return [grade.reward for grade in self.grades[0]]


def generate_and_grade(rows: list[dict], *, engine: Engine, graders: list, criteria: list[dict],
                       params: SamplingParams, batch_prompts: int = 8,
                       on_batch: Callable[[int], None] | None = None) -> tuple[list[Rollout], dict]:
    """Sample `params.n` answers for every row and grade each with every grader.

    Returns the rollouts and timings (`sampling`, `grading` seconds). Prompts go to the engine in batches of
    `batch_prompts` rows; each batch is graded as one concurrent `grade_many` call per grader.
    """
    rollouts: list[Rollout] = []
    timing = {"sampling": 0.0, "grading": 0.0}
    for start in range(0, len(rows), batch_prompts):
        batch = rows[start:start + batch_prompts]
        began = time.perf_counter()
        with faults.during_sampling(engine):  # fault-injection tests only (OPENRFT_FAULT, openrft.faults)
            groups = _generate(engine, batch, params)
        timing["sampling"] += time.perf_counter() - began
        began = time.perf_counter()
        pairs = [(sample.grader_sample(), grader_item(row)) for row, group in zip(batch, groups) for sample in group]
        faults.maybe_fail_grading(graders, pairs)
        flat = [grader.grade_many(pairs) for grader in graders]
        timing["grading"] += time.perf_counter() - began
        offset = 0
        for i, (row, group) in enumerate(zip(batch, groups)):
            grades = [per_grader[offset:offset + len(group)] for per_grader in flat]
            offset += len(group)
            rollouts.append(Rollout(start + i, row, group, grades, criteria))
        if on_batch:
            on_batch(len(batch))
    return rollouts, timing
