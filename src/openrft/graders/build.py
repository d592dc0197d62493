"""`build_grader`: grader JSON (or a parsed spec) in, a ready Grader out."""

from __future__ import annotations

from typing import Any

from openrft.graders.base import Grader
from openrft.graders.model_graders import JudgeFactory, LabelModelGrader, ScoreModelGrader
from openrft.graders.multi import MultiGrader
from openrft.graders.python_grader import PythonGrader
from openrft.graders.sandbox import SandboxPool
from openrft.graders.spec import parse_grader
from openrft.graders.string_check import StringCheckGrader
from openrft.graders.text_similarity import TextSimilarityGrader


def build_grader(spec_or_dict: Any, *, judge_engine_factory: JudgeFactory | None = None,
                 sandbox: SandboxPool | None = None) -> Grader:
    """A Grader for grader JSON or a spec (validated first: raises GraderValidationError).

    `judge_engine_factory(model_name) -> Engine` serves score_model / label_model judges (default:
    openrft.engines.get_engine, see model_graders.py); `sandbox` is the pool for python graders
    (default: the process-wide pool).
    """
    spec = parse_grader(spec_or_dict)
    if spec.type == "string_check":
        return StringCheckGrader(spec)
    if spec.type == "text_similarity":
        return TextSimilarityGrader(spec)
    if spec.type == "python":
        return PythonGrader(spec, sandbox=sandbox)
    if spec.type == "score_model":
        return ScoreModelGrader(spec, judge_engine_factory=judge_engine_factory)
    if spec.type == "label_model":
        return LabelModelGrader(spec, judge_engine_factory=judge_engine_factory)
    graders = {key: build_grader(sub, judge_engine_factory=judge_engine_factory, sandbox=sandbox)
               for key, sub in spec.graders.items()}
    return MultiGrader(spec, graders)
