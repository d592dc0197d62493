"""string_check (spec §3.3): eq / ne exact comparison, like / ilike substring containment."""

from __future__ import annotations

from openrft.graders.base import Grader
from openrft.graders.grade import Grade
from openrft.graders.templating import TemplateError, render

OPERATIONS = {
    "eq": lambda text, reference: text == reference,
    "ne": lambda text, reference: text != reference,
    "like": lambda text, reference: reference in text,
    "ilike": lambda text, reference: reference.casefold() in text.casefold(),
}


class StringCheckGrader(Grader):
    def __init__(self, spec):
        super().__init__(spec)
        self.compare = OPERATIONS[spec.operation]

    def grade_one(self, sample: dict, item: dict) -> Grade:
        try:
            text = render(self.spec.input, sample, item)
            reference = render(self.spec.reference, sample, item)
        except TemplateError as exc:
            return self.failed("invalid_variable_error", str(exc))
        return Grade(reward=1.0 if self.compare(text, reference) else 0.0, name=self.name, type=self.type)
