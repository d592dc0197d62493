"""multi graders (spec §3.8): named sub-graders combined by the `calculate_output` formula.

Each sub-grader grades the whole group at once (so python sub-graders use the pool in parallel and
model sub-graders batch their judge calls); the formula then combines the sub-rewards per sample.
A sub-grader's error flags carry over to the multi grade (its reward counts as 0 in the formula); a
formula that cannot be evaluated (division by zero, log of 0) is an `other_error`.
"""

from __future__ import annotations

from openrft.graders.base import Grader
from openrft.graders.formula import Formula, FormulaError
from openrft.graders.grade import Grade


class MultiGrader(Grader):
    def __init__(self, spec, graders: dict[str, Grader]):
        super().__init__(spec)
        self.graders = graders
        self.formula = Formula(spec.calculate_output)

    def grade_many(self, pairs) -> list[Grade]:
        pairs = list(pairs)
        by_key = {key: grader.grade_many(pairs) for key, grader in self.graders.items()}
        grades = []
        for index in range(len(pairs)):
            parts = {key: sub_grades[index] for key, sub_grades in by_key.items()}
            sub_rewards = {key: part.reward for key, part in parts.items()}
            grade = Grade(reward=0.0, name=self.name, type=self.type, sub_rewards=sub_rewards,
                          scores=dict(sub_rewards),
                          execution_time=sum(part.execution_time for part in parts.values()))
            for part in parts.values():
                grade.merge_errors(part)
            try:
                grade.reward = self.formula.evaluate(sub_rewards)
            except FormulaError as exc:
                grade.errors["other_error"] = True
                grade.message = grade.message or str(exc)
            models = [part.sampled_model_name for part in parts.values() if part.sampled_model_name]
            grade.sampled_model_name = models[0] if models else None
            grades.append(grade)
        return grades
