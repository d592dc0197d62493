"""python graders (spec §3.7): the user's `grade(sample, item)` runs in the sandbox pool (sandbox.py).

Any failure is a reward-0 grade: an exception, a non-float, NaN or infinite result, a source that
does not load, `sys.exit` or a memory error is a `python_grader_runtime_error` with the traceback in
`python_grader_runtime_error_details`; a timeout, a crashed worker or a sandbox that cannot start is a
`python_grader_server_error` with its `python_grader_server_error_type` (timeout, crashed, ...).
"""

from __future__ import annotations

from openrft.graders.base import Grader
from openrft.graders.grade import Grade
from openrft.graders.sandbox import SandboxPool, SandboxResult, SandboxUnavailable, default_pool


class PythonGrader(Grader):
    def __init__(self, spec, *, sandbox: SandboxPool | None = None):
        super().__init__(spec)
        self._sandbox = sandbox

    @property
    def sandbox(self) -> SandboxPool:
        return self._sandbox or default_pool()

    def grade_many(self, pairs) -> list[Grade]:
        pairs = list(pairs)
        try:
            results = self.sandbox.run_many(self.spec.source, pairs)
        except SandboxUnavailable as exc:
            return [self.failed("python_grader_server_error", str(exc), detail="sandbox_unavailable") for _ in pairs]
        return [self.to_grade(result) for result in results]

    def to_grade(self, result: SandboxResult) -> Grade:
        if result.error is None:
            assert result.reward is not None  # a result without an error carries its reward
            grade = Grade(reward=float(result.reward), name=self.name, type=self.type)
        elif result.error == "runtime":
            grade = self.failed("python_grader_runtime_error", result.details or result.error_type or "error")
        else:
            grade = self.failed("python_grader_server_error", result.details or "the sandbox failed",
                                detail=result.error_type or "server_error")
        grade.execution_time = result.seconds
        return grade
