"""GSM8K grade-school maths (Cobbe et al., 2021): a word problem in, a worked answer ending in `#### N` out.

The rows keep GSM8K's own `answer` (the worked solution with its final `#### N` line), which the
ready-made `gsm8k_numeric` grader reads, and `final_answer` (just N) for simpler graders such as a
`string_check`. There is no response_format: the model answers in free text and the grader reads its
final number, the way GSM8K is usually scored.

The shared folder holds GSM8K's training file only (its test split is held out), so the task splits it
into train and validation by a seeded shuffle (`valid_fraction`, default 10%: 747 validation rows,
within OpenAI's 1,000).
"""

from __future__ import annotations

import re

from openrft.data.splits import split_rows
from openrft.data.validate import DatasetError, Problem, read_jsonl
from openrft.tasks.base import Task, TaskError

FINAL = re.compile(r"####\s*(.+?)\s*$")


def problem_prompt(question: str) -> str:
    return ("Solve this maths word problem. Reason step by step, then give the final answer on its own last "
            f"line in the form '#### <number>'.\n\nProblem: {question}")


def load(split: str, *, valid_fraction: float = 0.1, seed: int = 0, limit: int | None = None) -> list[dict]:
    from openrft.paths import shared_data_dir

    folder = shared_data_dir()
    if folder is None or not (folder / "gsm8k" / "train.jsonl").is_file():
        raise TaskError("task gsm8k needs the real data folder (../shared/data/gsm8k/train.jsonl, or "
                        "$OPENRFT_DATA_DIR)")
    path = folder / "gsm8k" / "train.jsonl"
    numbered, problems = read_jsonl(path)
    rows = []
    for line, record in numbered:
        question, answer = record.get("question"), record.get("answer")
        match = FINAL.search(answer) if isinstance(answer, str) else None
        if not isinstance(question, str) or not question.strip():
            problems.append(Problem(str(path), line, "question", "missing or empty"))
        elif match is None:
            problems.append(Problem(str(path), line, "answer", "missing, or without a final '#### <number>' line"))
        else:
            rows.append({"messages": [{"role": "user", "content": problem_prompt(question.strip())}],
                         "id": f"gsm8k-{line:05d}", "answer": answer, "final_answer": match.group(1).replace(",", "")})
    if problems:
        raise DatasetError(problems)
    train, validation = split_rows(rows, group_key="id", stratify=None, valid_fraction=valid_fraction, seed=seed)
    chosen = train if split == "train" else validation
    return chosen[:limit] if limit is not None else chosen


def task() -> Task:
    return Task(
        name="gsm8k",
        description="grade-school maths word problems -> a worked answer ending in '#### N' (numeric grader)",
        loader=load,
        grader_name="gsm8k_numeric",
        labels=None,
        response_format=None,
        label_key=None,
        group_key="id",
        source="openai/grade-school-math train split in the data folder, split 90/10 with a seed",
        options={"valid_fraction": 0.1, "seed": 0, "limit": None},
    )
