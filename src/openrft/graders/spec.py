"""Grader specs: OpenAI's grader JSON as pydantic models, and `parse_grader` (spec §3).

`parse_grader(dict)` accepts every grader that OpenAI's RFT and evals accept, unchanged, and
rejects anything else with a GraderValidationError whose message names the field, e.g.
`graders.f1.operation: must be one of 'eq', 'ne', 'like', 'ilike' (got 'equals')`. That message is
what the validate endpoint returns. Tolerances, each from the spec:

- `name` is required by OpenAI's schema but left out in some of its doc examples: it defaults to the type.
- `pass_threshold` (evals) is accepted on every type that evals allow it on; RFT ignores it.
- `sampling_params` takes `max_completions_tokens`, `max_completion_tokens` or `max_tokens` (§7.6).
- `multi.graders` is a map of named graders (§3.8, J647); a single grader object there is rejected
  with OpenAI's message. Multi graders do not nest.
- `label_model` is accepted at the top level too (evals use it there), though RFT jobs do not allow it.
"""

from __future__ import annotations

import ast
import math
from typing import Annotated, Any, Literal, Union, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from openrft.errors import InputError
from openrft.graders.formula import Formula, FormulaError
from openrft.graders.templating import check_template

MAX_SOURCE_BYTES = 256 * 1024  # OpenAI: python grader source smaller than 256 kB
STRING_OPERATIONS = ("eq", "ne", "like", "ilike")
SIMILARITY_METRICS = ("fuzzy_match", "bleu", "gleu", "meteor", "cosine",
                      "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l")


class GraderValidationError(InputError, ValueError):
    """A grader that OpenAI would reject; `.problems` lists (field, reason), `.field` is the first field."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {reason}" if field else reason for field, reason in problems))

    @property
    def field(self) -> str:
        return self.problems[0][0]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""

    @model_validator(mode="after")
    def _default_name(self):
        if not self.name:
            object.__setattr__(self, "name", self.type)
        return self

    def to_json(self) -> dict[str, Any]:
        """The grader as OpenAI JSON (unset optional fields left out)."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


def _template(value: str) -> str:
    problem = check_template(value)
    if problem:
        raise ValueError(problem)
    return value


class StringCheckSpec(_Spec):
    """§3.3: eq / ne (exact, case-sensitive) and like / ilike (substring, case-(in)sensitive)."""

    type: Literal["string_check"]
    input: str
    reference: str
    operation: Literal["eq", "ne", "like", "ilike"]

    @field_validator("input", "reference")
    @classmethod
    def _templates(cls, value: str) -> str:
        return _template(value)


class TextSimilaritySpec(_Spec):
    """§3.4: a similarity score in [0, 1] between the rendered input and reference."""

    type: Literal["text_similarity"]
    input: str
    reference: str
    evaluation_metric: Literal["fuzzy_match", "bleu", "gleu", "meteor", "cosine",
                               "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"]
    pass_threshold: float | None = None

    @field_validator("input", "reference")
    @classmethod
    def _templates(cls, value: str) -> str:
        return _template(value)

    @field_validator("evaluation_metric")
    @classmethod
    def _resources(cls, metric: str) -> str:
        from openrft.graders.text_similarity import missing_resource

        problem = missing_resource(metric)
        if problem:
            raise ValueError(problem)
        return metric


class PythonSpec(_Spec):
    """§3.7: `source` defines grade(sample, item) -> float; it runs in the sandbox."""

    type: Literal["python"]
    source: str
    image_tag: str | None = None
    pass_threshold: float | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, source: str) -> str:
        size = len(source.encode())
        if size > MAX_SOURCE_BYTES:
            raise ValueError(f"the source is {size:,} bytes; the limit is {MAX_SOURCE_BYTES:,} (256 kB)")
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise ValueError(f"syntax error at line {exc.lineno}: {exc.msg}") from None
        problem = grade_signature_problem(tree)
        if problem:
            raise ValueError(problem)
        return source


def grade_signature_problem(tree: ast.Module) -> str | None:
    """Why the module does not define grade(sample, item) with exactly two parameters, or None."""
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "grade":
            found = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.ImportFrom, ast.ClassDef)):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            names = [getattr(target, "id", None) for target in targets]
            if isinstance(node, ast.ImportFrom):
                names = [alias.asname or alias.name for alias in node.names]
            if isinstance(node, ast.ClassDef):
                names = [node.name]
            if "grade" in names:
                return None  # defined another way: the sandbox checks it when it loads the source
    if found is None:
        return "must define a function grade(sample, item)"
    if isinstance(found, ast.AsyncFunctionDef):
        return "grade must be a plain function, not async"
    arguments = found.args
    positional = len(arguments.posonlyargs) + len(arguments.args)
    required = positional - len(arguments.defaults)
    required_keywords = [arg.arg for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults)
                         if default is None]
    if required > 2 or (positional < 2 and arguments.vararg is None) or required_keywords:
        params = ", ".join(arg.arg for arg in arguments.posonlyargs + arguments.args)
        return f"grade({params}) must take exactly two arguments (sample, item)"
    return None


class ContentPart(BaseModel):
    """One part of a message's content: text, an image or audio (all may hold templates)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["input_text", "output_text", "input_image", "input_audio"]
    text: str | None = None
    image_url: str | None = None
    detail: Literal["high", "low", "auto"] | None = None
    input_audio: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _fields(self):
        needed = {"input_text": "text", "output_text": "text", "input_image": "image_url",
                  "input_audio": "input_audio"}[self.type]
        if getattr(self, needed) is None:
            raise _FieldError(needed, f"required field for a {self.type} part")
        for value in (self.text, self.image_url):
            if value is not None:
                _template(value)
        return self


def _content_kind(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "list[ContentPart]"
    if isinstance(value, (dict, ContentPart)):
        return "ContentPart"
    return "str"


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Literal["user", "assistant", "system", "developer"]
    content: Annotated[Union[Annotated[str, Tag("str")], Annotated[ContentPart, Tag("ContentPart")],
                             Annotated[list[ContentPart], Tag("list[ContentPart]")]], Discriminator(_content_kind)]
    type: Literal["message"] | None = None

    @field_validator("content")
    @classmethod
    def _content(cls, content):
        if isinstance(content, str):
            _template(content)
        return content


class ModelSamplingParams(BaseModel):
    """§3.5 sampling_params; the token limit under any of its three spellings (§7.6)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int | None = None
    top_p: float | None = Field(default=None, ge=0, le=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_completions_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    reasoning_effort: str | None = None

    @property
    def token_limit(self) -> int | None:
        return self.max_completions_tokens or self.max_completion_tokens or self.max_tokens


class ScoreModelSpec(_Spec):
    """§3.5: a judge model returns {"result": float, "steps": [...]}; the result, clipped to range, is the reward."""

    type: Literal["score_model"]
    model: str
    input: list[Message] = Field(min_length=1)
    range: list[float] = Field(default_factory=lambda: [0.0, 1.0])
    sampling_params: ModelSamplingParams | None = None
    pass_threshold: float | None = None

    @field_validator("range")
    @classmethod
    def _range(cls, value: list[float]) -> list[float]:
        if len(value) != 2 or not all(math.isfinite(bound) for bound in value) or value[0] >= value[1]:
            raise ValueError(f"must be [min, max] with min < max (got {value})")
        return value


class LabelModelSpec(_Spec):
    """§3.6: a judge model picks one of `labels`; reward 1 if it is one of `passing_labels`."""

    type: Literal["label_model"]
    model: str
    input: list[Message] = Field(min_length=1)
    labels: list[str] = Field(min_length=1)
    passing_labels: list[str] = Field(min_length=1)
    sampling_params: ModelSamplingParams | None = None

    @model_validator(mode="after")
    def _subset(self):
        outside = [label for label in self.passing_labels if label not in self.labels]
        if outside:
            raise _FieldError("passing_labels", f"{outside} are not in labels {self.labels}")
        return self


SubGraderSpec = Annotated[Union[StringCheckSpec, TextSimilaritySpec, PythonSpec, ScoreModelSpec, LabelModelSpec],
                          Field(discriminator="type")]


class MultiSpec(_Spec):
    """§3.8: named sub-graders combined by the `calculate_output` formula."""

    type: Literal["multi"]
    graders: dict[str, SubGraderSpec]
    calculate_output: str

    @model_validator(mode="after")
    def _formula(self):
        try:
            formula = Formula(self.calculate_output)
        except FormulaError as exc:
            raise _FieldError("calculate_output", f"cannot parse {self.calculate_output!r}: {exc}") from None
        unknown = sorted(formula.names - set(self.graders))
        if unknown:
            raise _FieldError("calculate_output", f"names {unknown} that are not keys of graders "
                                                  f"({sorted(self.graders)})")
        return self


GraderSpec = Annotated[Union[StringCheckSpec, TextSimilaritySpec, PythonSpec, ScoreModelSpec, LabelModelSpec,
                             MultiSpec], Field(discriminator="type")]
_ADAPTER = TypeAdapter(GraderSpec)
GRADER_TYPES = ("string_check", "text_similarity", "python", "score_model", "label_model", "multi")


class _FieldError(InputError, ValueError):
    """Raised inside a validator to blame a field other than the one being validated."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}\x00{reason}")


def parse_grader(data: Any) -> GraderSpec:
    """Validate grader JSON (a dict) into its spec; raise GraderValidationError naming the field."""
    if isinstance(data, BaseModel):
        return cast(GraderSpec, data)  # already a spec
    if not isinstance(data, dict):
        raise GraderValidationError([("grader", f"must be a JSON object, got {type(data).__name__}")])
    problems = _precheck(data, "")
    if problems:
        raise GraderValidationError(problems)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise GraderValidationError(_problems(exc)) from None


def _precheck(data: dict, prefix: str) -> list[tuple[str, str]]:
    """Problems pydantic would word badly: a missing or unknown type, a single grader where a map belongs."""
    kind = data.get("type")
    if kind is None:
        return [(prefix + "type", f"missing; one of {', '.join(GRADER_TYPES)}")]
    if kind not in GRADER_TYPES:
        return [(prefix + "type", f"unknown grader type {kind!r}; one of {', '.join(GRADER_TYPES)}")]
    if kind != "multi":
        return []
    graders = data.get("graders")
    if isinstance(graders, dict) and isinstance(graders.get("type"), str):
        # OpenAI's answer to a single grader object here (J647)
        return [(prefix + "graders", "Invalid type for 'graders.input': expected an object, but got a string "
                                     "instead. graders must map names to graders, e.g. {\"accuracy\": {...}}")]
    problems = []
    for key, sub in (graders or {}).items() if isinstance(graders, dict) else []:
        if not isinstance(sub, dict):
            problems.append((f"{prefix}graders.{key}", f"must be a grader object, got {type(sub).__name__}"))
        elif sub.get("type") == "multi":
            problems.append((f"{prefix}graders.{key}.type", "multi graders cannot be nested"))
        else:
            problems += _precheck(sub, f"{prefix}graders.{key}.")
    return problems


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors():
        location = _json_location(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if "\x00" in message:
            field, message = message.split("\x00", 1)
            location.append(field)
        if error["type"] == "extra_forbidden":
            message = "unknown field (not part of this grader type)"
        elif error["type"] == "literal_error":
            message = f"must be one of {error['ctx']['expected']} (got {error['input']!r})"
        elif error["type"] == "missing":
            message = "required field is missing"
        problems.append((".".join(location), message))
    return problems


def _json_location(loc: tuple) -> list[str]:
    """A pydantic error location as the JSON path, without the union tags pydantic inserts.

    Pydantic puts the grader type after each grader position ("string_check", "operation") and the
    member type in unions of content ("list[ContentPart]", 0, "text").
    """
    parts = [str(part) for part in loc]
    path: list[str] = []
    grader_position = True
    index = 0
    while index < len(parts):
        part = parts[index]
        if grader_position and part in GRADER_TYPES:
            grader_position = False
        elif part in ("str", "ContentPart") or part.startswith("list["):
            pass
        else:
            path.append(part)
            if part == "graders" and index + 1 < len(parts):
                path.append(parts[index + 1])
                index += 1
                grader_position = True
        index += 1
    return path
