"""Graders: OpenAI's grader JSON, parsed, validated and run (see docs/architecture.md, "Graders").

    from openrft.graders import build_grader, ready_grader
    grader = build_grader(ready_grader("multilabel_f1"))
    grade = grader.grade(sample.grader_sample(), item)       # Grade: reward, sub_rewards, errors, ...
    grades = grader.grade_many([(s, item) for s in group])   # a group at once (concurrent / batched)

`run_grader(request)` and `validate_grader(request)` are the run / validate endpoints' logic, shared
by the CLI (`openrft grade`) and the HTTP service.
"""

from openrft.graders.base import Grader
from openrft.graders.build import build_grader
from openrft.graders.grade import ERROR_FLAGS, Grade
from openrft.graders.ready import ready_grader, ready_names
from openrft.graders.run import run_grader, validate_grader
from openrft.graders.spec import GraderSpec, GraderValidationError, parse_grader
from openrft.graders.variables import template_variables

__all__ = ["ERROR_FLAGS", "Grade", "Grader", "GraderSpec", "GraderValidationError", "build_grader", "parse_grader",
           "ready_grader", "ready_names", "run_grader", "template_variables", "validate_grader"]
