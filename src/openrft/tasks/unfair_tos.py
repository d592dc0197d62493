"""UNFAIR-ToS (Lippi et al., 2019; LexGLUE): which kinds of unfair clause a terms-of-service sentence has.

Multi-label over 8 clause types plus "None" for a fair sentence. "None" is 89% of the rows, so a model
that always answers "None" scores well on accuracy: this is the stress case for balanced sampling and
for a grader that must not reward the majority answer. "None" is kept as an explicit label (rather than
an empty list) so that it shows in the label statistics and balancing can down-weight it.

The source file carries LexGLUE's instruction-style prompt in `input_text`; the sentence is taken out of
it and put into this task's own prompt, which asks for the same JSON answer as the other classification
tasks. Six sentences occur twice with the same labels; the second copy is dropped. The file has no
validation split, so the task makes one with label-stratified iterative stratification (`valid_fraction`,
default 20%).
"""

from __future__ import annotations

import re

from openrft.data.splits import split_rows
from openrft.data.validate import DatasetError, Problem, read_jsonl
from openrft.tasks.base import Task, TaskError, json_labels_format

LABELS = ["Limitation of liability", "Unilateral termination", "Unilateral change", "Content removal",
          "Contract by using", "Choice of law", "Jurisdiction", "Arbitration", "None"]
SENTENCE = re.compile(r'^Given the following sentence from an online Term of Services:"(.*)"\n\nThe sentence is unfair',
                      re.S)
RESPONSE_FORMAT = json_labels_format("unfair_tos_labels", LABELS)


def sentence_prompt(sentence: str) -> str:
    listing = "\n".join(f"- {label}" for label in LABELS[:-1])
    return ("Here is a sentence from the terms of service of an online platform:\n"
            f'"{sentence}"\n\n'
            f"Which kinds of potentially unfair clause does it contain? The kinds:\n{listing}\n\n"
            'Most sentences are fair: answer "None" for a fair sentence. Answer with JSON only, in the form '
            '{"labels": ["<kind>", ...]}, using the exact names above or "None".')


def load(split: str, *, valid_fraction: float = 0.2, seed: int = 0) -> list[dict]:
    from openrft.paths import shared_data_dir

    folder = shared_data_dir()
    path = folder / "unfair_tos" / "unfair_tos_1000.jsonl" if folder else None
    if path is None or not path.is_file():
        raise TaskError("task unfair-tos needs the real data folder (../shared/data/unfair_tos/, or $OPENRFT_DATA_DIR)")
    numbered, problems = read_jsonl(path)
    rows: list[dict] = []
    seen: dict = {}
    for line, record in numbered:
        match = SENTENCE.match(record.get("input_text") or "")
        answer = record.get("answer")
        if match is None:
            problems.append(Problem(str(path), line, "input_text",
                                    "not LexGLUE's UNFAIR-ToS prompt with a quoted sentence"))
            continue
        labels = [part.strip() for part in answer.split(",")] if isinstance(answer, str) else []
        unknown = [label for label in labels if label not in LABELS]
        if not labels or unknown:
            problems.append(Problem(str(path), line, "answer", f"expected clause types from {LABELS}, got {answer!r}"))
            continue
        if "None" in labels and len(labels) > 1:
            problems.append(Problem(str(path), line, "answer", f"'None' together with clause types: {answer!r}"))
            continue
        sentence = match.group(1).strip()
        labels = sorted(set(labels), key=LABELS.index)
        if sentence in seen:
            if seen[sentence] != labels:
                problems.append(Problem(str(path), line, "answer",
                                        "the same sentence appears earlier with other labels"))
            continue
        seen[sentence] = labels
        rows.append({"messages": [{"role": "user", "content": sentence_prompt(sentence)}],
                     "id": f"unfair-tos-{line:04d}", "labels": labels})
    if problems:
        raise DatasetError(problems)
    train, validation = split_rows(rows, group_key="id", stratify="labels", valid_fraction=valid_fraction, seed=seed)
    return train if split == "train" else validation


def task() -> Task:
    return Task(
        name="unfair-tos",
        description="terms-of-service sentences -> unfair clause types (multi-label, 8 types + 'None', 89% None)",
        loader=load,
        grader_name="multilabel_f1",
        labels=LABELS,
        response_format=RESPONSE_FORMAT,
        label_key="labels",
        group_key="id",
        source="LexGLUE UNFAIR-ToS (1,000 sentences) in the data folder, split 80/20 by iterative stratification",
        options={"valid_fraction": 0.2, "seed": 0},
    )
