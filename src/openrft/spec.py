"""The job spec: OpenAI's create-job body, plus one `openrft` block for what OpenAI does not expose.

```yaml
model: default                       # any name openrft.models understands
training_file: data/train.jsonl      # a path (relative to the job file) or an uploaded file id
validation_file: data/validation.jsonl
suffix: eurovoc
seed: 42
method:
  type: reinforcement
  reinforcement:
    grader: {...}                    # OpenAI grader JSON (a string is read as a path to a JSON file)
    response_format: {...}           # OpenAI json_schema response_format (or a path)
    hyperparameters: {batch_size: auto, n_epochs: 2, compute_multiplier: 1, eval_interval: 5, eval_samples: 3}
openrft:                             # the extension block: every key optional
  finetune: lora                     # lora | full
  lora_rank: 16
  ...                                # see OpenrftOptions
```

`method.type` may also be `supervised` (`method.supervised.hyperparameters`: batch_size, n_epochs,
learning_rate_multiplier) or `dpo` (the same plus `beta`), as on OpenAI; their rows are SFT conversations and
preference pairs (openrft.data.formats). The block of another type than `method.type` is refused.

OpenAI's keys keep their meaning; nothing in `openrft` changes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from openrft.errors import InputError

Auto = Literal["auto"]


def clean_grader(grader: Any) -> Any:
    """A grader as the grader parser takes it, from any form openrft or the SDK emits.

    Dropped: null fields (an SDK dump's `range: null`, `sampling_params: null`) and the `id` the evals API
    adds to a testing criterion (here and in sub-graders); bare strings of a content list become
    `{"type": "input_text", "text": ...}` parts.
    """
    if not isinstance(grader, dict):
        return grader
    out = {key: _clean(value, key) for key, value in grader.items() if value is not None and key != "id"}
    if isinstance(out.get("graders"), dict):
        out["graders"] = {key: clean_grader(sub) for key, sub in out["graders"].items()}
    return out


def _clean(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v, k) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if key == "content":
            return [{"type": "input_text", "text": v} if isinstance(v, str) else _clean(v, "") for v in value]
        return [_clean(v, "") for v in value]
    return value


class SupervisedHyperparameters(BaseModel):
    """OpenAI's SupervisedHyperparameters (the keys every method has); each accepts "auto"
    (rules: openrft.training.hyperparams)."""

    model_config = ConfigDict(extra="forbid")
    batch_size: Union[Auto, int] = Field("auto", description="prompts (RFT) or rows (SFT, DPO) per step (1–256)")
    learning_rate_multiplier: Union[Auto, float] = "auto"
    n_epochs: Union[Auto, int] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _as_emitted(cls, data):
        """A job's own hyperparameters are accepted back: `resolved` is dropped and a null means the default."""
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "resolved" and v is not None}
        return data

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, v):
        if v != "auto" and not 1 <= v <= 256:
            raise ValueError("batch_size must be 'auto' or an integer in 1..256")
        return v

    @field_validator("n_epochs")
    @classmethod
    def _epochs(cls, v):
        if v != "auto" and not 1 <= v <= 50:
            raise ValueError("n_epochs must be 'auto' or an integer in 1..50")
        return v

    @field_validator("learning_rate_multiplier")
    @classmethod
    def _lr(cls, v):
        if v != "auto" and not v > 0:
            raise ValueError("learning_rate_multiplier must be 'auto' or a number > 0")
        return v


class Hyperparameters(SupervisedHyperparameters):
    """OpenAI's FineTuneReinforcementHyperparameters; every key accepts "auto"."""

    reasoning_effort: Literal["default", "low", "medium", "high"] = "default"
    compute_multiplier: Union[Auto, float] = "auto"
    eval_interval: Union[Auto, int] = "auto"
    eval_samples: Union[Auto, int] = "auto"

    @field_validator("compute_multiplier")
    @classmethod
    def _compute(cls, v):
        if v != "auto" and not 0 < v <= 10:
            raise ValueError("compute_multiplier must be 'auto' or a number in (0, 10]")
        return v

    @field_validator("eval_interval", "eval_samples")
    @classmethod
    def _positive(cls, v):
        if v != "auto" and v < 1:
            raise ValueError("must be 'auto' or an integer >= 1")
        return v


class _MethodBlock(BaseModel):
    """A `method.<type>` block: its `hyperparameters` (null or absent: every key "auto")."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("hyperparameters", mode="before", check_fields=False)
    @classmethod
    def _hyperparameters(cls, value):
        return {} if value is None else value


class Reinforcement(_MethodBlock):
    grader: dict[str, Any]
    response_format: Optional[dict[str, Any]] = None
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)

    @field_validator("grader", mode="before")
    @classmethod
    def _grader(cls, value):
        value = clean_grader(value)
        if isinstance(value, dict) and value.get("type") == "label_model":
            raise ValueError("label_model cannot be the reinforcement grader (as on OpenAI): use string_check, "
                             "text_similarity, python, score_model or multi")
        return value


class DpoHyperparameters(SupervisedHyperparameters):
    """OpenAI's DpoHyperparameters: the supervised ones plus `beta` (the DPO loss's temperature)."""

    beta: Union[Auto, float] = Field("auto", description="weight of the reference in the DPO loss (auto: 0.1)")

    @field_validator("beta")
    @classmethod
    def _beta(cls, v):
        if v != "auto" and not v > 0:
            raise ValueError("beta must be 'auto' or a number > 0")
        return v


class Supervised(_MethodBlock):
    hyperparameters: SupervisedHyperparameters = Field(default_factory=SupervisedHyperparameters)


class Dpo(_MethodBlock):
    hyperparameters: DpoHyperparameters = Field(default_factory=DpoHyperparameters)


METHOD_TYPES = ("supervised", "dpo", "reinforcement")


class Method(BaseModel):
    """OpenAI's `method`: `type` and the one block of that type (the others absent or null, as a job object
    carries them). The supervised and dpo blocks may be left out (every hyperparameter "auto")."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: Optional[Supervised] = None
    dpo: Optional[Dpo] = None
    reinforcement: Optional[Reinforcement] = None

    @model_validator(mode="after")
    def _one_block(self):
        problem = method_block_problem({name: getattr(self, name) for name in METHOD_TYPES} | {"type": self.type})
        if problem:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        if self.type == "supervised" and self.supervised is None:
            self.supervised = Supervised()
        if self.type == "dpo" and self.dpo is None:
            self.dpo = Dpo()
        return self

    @property
    def block(self) -> "Supervised | Dpo | Reinforcement":
        """The block of `type`: its hyperparameters (and for reinforcement its grader)."""
        return getattr(self, self.type)


def method_block_problem(method: Any) -> tuple[str, str] | None:
    """(field, reason) when a method's blocks do not match its `type`, else None."""
    if not isinstance(method, dict) or method.get("type") not in METHOD_TYPES:
        return None
    for name in METHOD_TYPES:
        if name != method["type"] and method.get(name) is not None:
            return (f"method.{name}", f"a {name} block is given but method.type is {method['type']!r}: give the "
                                      f"block of the method you ask for (method.{method['type']}) or change the type")
    if method["type"] == "reinforcement" and method.get("reinforcement") is None:
        return ("method.reinforcement", "required when method.type is 'reinforcement' (it holds the grader)")
    return None


class WandbIntegration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str = Field(min_length=1)
    name: Optional[str] = None
    entity: Optional[str] = None
    tags: Optional[list[str]] = None


class Integration(BaseModel):
    """OpenAI's `{"type": "wandb", "wandb": {...}}`: the job logs its metrics to this W&B project."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["wandb"]
    wandb: WandbIntegration


def auto_device() -> str:
    """The device of `device: auto`: "cuda" when torch sees a GPU (a worker of `openrft serve` sees its own one),
    else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def auto_precision(device: str) -> str:
    """The precision of `precision: auto`: bfloat16 on a GPU that computes it, else float32 (also on a CPU:
    training in float32 keeps the sampler's and the trainer's log-probabilities equal)."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bfloat16"
    return "float32"


Tracker = Literal["tensorboard", "wandb", "mlflow", "trackio"]


def _default_trackers() -> list[Tracker]:
    return ["tensorboard"]


class OpenrftOptions(BaseModel):
    """What OpenAI does not expose. Defaults suit the embedded model; `device` and `precision` follow the
    machine that parses the spec (cuda and bfloat16 on a GPU server, cpu and float32 on a laptop)."""

    model_config = ConfigDict(extra="forbid")
    task: Optional[str] = Field(None, description="take training/validation files, grader and response_format from "
                                "an openrft task (see `openrft data tasks`) where the body leaves them out; "
                                "'auto' = the EuroVoc task when the real data is present, else its offline variant")
    task_options: dict[str, Any] = Field(default_factory=dict, description="options of the task's loader")
    finetune: Literal["lora", "full"] = "lora"
    lora_rank: int = Field(16, ge=1, le=4096)
    lora_alpha: int = Field(32, ge=1, le=65536)
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    lora_target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                                    "gate_proj", "up_proj", "down_proj"])
    engine: Literal["transformers"] = Field("transformers", description="the rollout engine; vLLM rollouts in "
                                            "training are not built yet (the vllm engine serves evals and chat)")
    device: str = Field("auto", description="cpu, cuda, cuda:N, ...; 'auto' = cuda when torch sees a GPU, else cpu")
    precision: Literal["auto", "float32", "bfloat16"] = Field("auto", description="the weights' dtype; 'auto' = "
                                                              "bfloat16 on a GPU that supports it, else float32")
    output_dir: Optional[str] = None
    trackers: list[Tracker] = Field(default_factory=_default_trackers)
    # sampling
    max_tokens: int = Field(96, ge=1, le=131072, description="new tokens per training sample (reasoning included)")
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    # algorithm (see openrft.training.algorithm)
    learning_rate: Optional[float] = Field(None, gt=0.0, le=1.0, description="base learning rate before the multiplier "
                                           "(default 1e-4 for LoRA, 1e-5 for full fine-tuning)")
    updates_per_batch: int = Field(2, ge=1, le=64,
                                   description="optimizer passes over one batch of rollouts (clipped ratio)")
    clip_epsilon: float = Field(0.2, gt=0.0, le=1.0)
    kl_coef: float = Field(0.0, ge=0.0, le=100.0)
    scale_rewards: bool = Field(True, description="divide group advantages by the group's std (GRPO); false = Dr. GRPO")
    truncated: Literal["keep", "mask"] = Field("keep", description="truncated samples: keep their grade, or leave them "
                                               "out of the loss (DAPO's overlong filtering)")
    max_grad_norm: float = Field(1.0, gt=0.0, description="gradient norm clipping (a huge value: no clipping)")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    max_grader_error_share: float = Field(0.5, ge=0.0, le=1.0, description="fail the job when a step's grader error "
                                          "share exceeds it")
    balance: bool = Field(True, description="balance labels in the epoch order (openrft.data.balance_rows)")
    label_key: Optional[str] = Field("labels", description="the row field holding reference labels, if any")
    group_key: Optional[str] = Field(None, description="the row field whose rows belong together (EuroVoc: "
                                     "`celex_id`, an act and its translations): subsets and held-out sets take "
                                     "whole groups; None = every row is its own group")
    labels: Optional[list[str]] = Field(None, description="the label space for P/R/F1 (default: task's or data's)")
    max_train_rows: Optional[int] = Field(None, ge=0, description="use at most this many training rows (0: all), "
                                          "spread over as many groups (group_key) as possible")
    max_valid_rows: Optional[int] = Field(None, ge=0, description="use at most this many validation rows (0: all)")
    max_steps: Optional[int] = Field(None, ge=0, description="stop after this many steps (a time budget for demos; "
                                     "0: no cap)")
    validate_at_start: bool = Field(True, description="a validation run of the base model at step 0")
    keep_checkpoints: int = Field(3, ge=0, le=10_000, description="best checkpoints kept (by validation reward), "
                                  "besides the last")
    prompts_per_generate: int = Field(4, ge=1, le=4096, description="prompts sampled in one generate call")

    @model_validator(mode="after")
    def _resolve_auto_device(self):
        """`auto` device and precision become the machine's, where the spec is parsed (the server that creates the
        job), so that the stored job says what it ran on."""
        if self.device == "auto":
            self.device = auto_device()
        if self.precision == "auto":
            self.precision = auto_precision(self.device)
        return self


class JobSpec(BaseModel):
    """OpenAI's CreateFineTuningJobRequest (supervised, dpo or reinforcement), plus `openrft`."""

    model_config = ConfigDict(extra="forbid")
    model: str
    training_file: str
    validation_file: Optional[str] = None
    suffix: Optional[str] = Field(None, max_length=64)
    seed: Optional[int] = Field(None, ge=0, le=2147483647)
    metadata: Optional[dict[str, str]] = None
    integrations: Optional[list[Integration]] = Field(None, max_length=5)
    hyperparameters: Optional[dict[str, Any]] = None  # deprecated top-level form; ignored when method is given
    method: Method
    openrft: OpenrftOptions = Field(default_factory=OpenrftOptions)

    @property
    def rl(self) -> Reinforcement:
        """The reinforcement block (grader, response_format, hyperparameters) of an RFT job."""
        if self.method.reinforcement is None:
            raise ValueError(f"a {self.method.type} job has no reinforcement block")
        return self.method.reinforcement


class JobSpecError(InputError):
    """A job file or body that does not validate; the message names the file and the field."""

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.param = param


def load_job_body(path: str | Path) -> dict:
    """Read a JSON or YAML job file; string grader/response_format values are read as JSON files, and
    relative data paths are made relative to the job file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise JobSpecError(f"{path}: cannot read job file: {exc.strerror}") from exc
    try:
        body = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise JobSpecError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if not isinstance(body, dict):
        raise JobSpecError(f"{path}: the job must be a mapping (OpenAI's create-job body)")
    base = path.parent
    for key in ("training_file", "validation_file"):
        value = body.get(key)
        if isinstance(value, str) and not value.startswith("file-") and not Path(value).is_absolute():
            body[key] = str((base / value).resolve())
    rl = ((body.get("method") or {}).get("reinforcement") or {})
    for key in ("grader", "response_format"):
        if key not in rl:
            continue
        if isinstance(rl.get(key), str):
            ref = Path(rl[key]) if Path(rl[key]).is_absolute() else base / rl[key]
            try:
                rl[key] = json.loads(ref.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise JobSpecError(f"{path}: method.reinforcement.{key}: cannot read {ref}: {exc}") from exc
    return body


def materialize_task(body: dict) -> dict:
    """Fill what a job body leaves out from its `openrft.task`: the task's rows are exported (unbalanced: the
    trainer balances each epoch itself) under `$OPENRFT_HOME/tasks/<task>/`, and its grader and
    response_format are used."""
    ext = body.get("openrft") or {}
    if not isinstance(ext, dict) or not ext.get("task"):
        return body  # (an `openrft` that is not a mapping is refused by the model)
    from openrft import paths
    from openrft.data import DatasetError
    from openrft.tasks import TaskError, default_task, get_task
    from openrft.tasks.export import export_task

    try:
        task = default_task() if ext["task"] == "auto" else get_task(ext["task"])
    except (TaskError, TypeError) as exc:  # TypeError: a task that is not a string
        raise JobSpecError(f"openrft.task: {exc}", param="openrft.task") from None
    options = ext.get("task_options") or {}
    if not isinstance(options, dict):
        raise JobSpecError("openrft.task_options: must be a mapping of option names to values",
                           param="openrft.task_options")
    unknown = sorted(str(name) for name in set(options) - set(task.options))
    if unknown:
        raise JobSpecError(f"openrft.task_options: task {task.name} has no option(s) {', '.join(unknown)} "
                           f"(options: {', '.join(sorted(task.options)) or 'none'})", param="openrft.task_options")
    body = {**body, "openrft": {**ext, "task": task.name}}
    method = body.setdefault("method", {"type": "reinforcement"})
    kind = method.get("type") if method.get("type") in METHOD_TYPES else "reinforcement"
    if kind == "reinforcement":
        rl = method.setdefault("reinforcement", {})
        rl.setdefault("grader", task.grader)
        if "response_format" not in rl:
            rl["response_format"] = task.response_format
    elif kind == "dpo" and not body.get("training_file"):
        raise JobSpecError(f"training_file: a dpo job needs preference rows, which task {task.name} does not have: "
                           "make them from an eval run with `openrft data preferences EVAL_RUN --out FILE`",
                           param="training_file")
    if task.labels and "labels" not in body["openrft"]:
        body["openrft"]["labels"] = task.labels
    if task.group_key and "group_key" not in body["openrft"]:
        body["openrft"]["group_key"] = task.group_key
    if not body.get("training_file") or ("validation_file" not in body):
        out = paths.home() / "tasks" / task.name / ("" if kind == "reinforcement" else kind)
        if not (out / "train.jsonl").is_file() or options:
            try:
                export_task(task, out, balance=False, method=kind, **options)
            except DatasetError:
                raise
            except (TaskError, TypeError, ValueError) as exc:  # a task without its data, an option's bad value
                param = "openrft.task_options" if options else "openrft.task"
                raise JobSpecError(f"{param}: task {task.name}: {exc}", param=param) from None
        body.setdefault("training_file", str(out / "train.jsonl"))
        body.setdefault("validation_file", str(out / "validation.jsonl"))
    return body


def parse_job(body: dict | str | Path, *, source: str = "job") -> JobSpec:
    if not isinstance(body, dict):
        source = str(body)
        body = load_job_body(body)
    body = materialize_task(body)
    problem = method_block_problem(body.get("method"))
    if problem:  # named as a field of its own (a pydantic model error would only name `method`)
        raise JobSpecError(f"{source}: {problem[0]}: {problem[1]}", param=problem[0])
    try:
        return JobSpec.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise JobSpecError(f"{source}: {problems}") from exc
