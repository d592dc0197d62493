"""The Grader interface: `grade(sample, item) -> Grade` and `grade_many(pairs) -> list[Grade]`.

`sample` is the `sample` namespace (`Sample.grader_sample()`: output_text, output_json, output_tools,
choices) and `item` the dataset row. Cheap graders implement `grade_one` and run in-process;
graders with a costly backend (the sandbox, a judge model, an embedding model) override
`grade_many` to batch or parallelise a whole group.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

from openrft.graders.grade import Grade

Pair = tuple[dict[str, Any], dict[str, Any]]


class Grader:
    def __init__(self, spec):
        self.spec = spec
        self.name: str = spec.name
        self.type: str = spec.type

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> Grade:
        """Grade one sample against its item."""
        return self.grade_many([(sample, item)])[0]

    def grade_many(self, pairs: Iterable[Pair]) -> list[Grade]:
        """Grade a group of (sample, item) pairs; the result is in the order of `pairs`."""
        grades = []
        clock = time.perf_counter
        for sample, item in pairs:
            started = clock()
            grade = self.grade_one(sample, item)
            grade.execution_time = clock() - started
            grades.append(grade)
        return grades

    def grade_one(self, sample: dict[str, Any], item: dict[str, Any]) -> Grade:
        raise NotImplementedError(f"{type(self).__name__} grades through grade_many")

    def failed(self, kind: str, message: str, **fields: Any) -> Grade:
        return Grade.failed(kind, message, name=self.name, type=self.type, **fields)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
