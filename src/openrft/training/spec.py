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

OpenAI's keys keep their meaning; nothing in `openrft` changes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


class Hyperparameters(BaseModel):
    """OpenAI's FineTuneReinforcementHyperparameters; every key accepts "auto"."""

    model_config = ConfigDict(extra="forbid")
    batch_size: Union[Auto, int] = Field("auto", description="prompts per step (1–256)")
    learning_rate_multiplier: Union[Auto, float] = "auto"
    n_epochs: Union[Auto, int] = "auto"
    reasoning_effort: Literal["default", "low", "medium", "high"] = "default"
    compute_multiplier: Union[Auto, float] = "auto"
    eval_interval: Union[Auto, int] = "auto"
    eval_samples: Union[Auto, int] = "auto"

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


class Reinforcement(BaseModel):
    model_config = ConfigDict(extra="forbid")
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

    @field_validator("hyperparameters", mode="before")
    @classmethod
    def _hyperparameters(cls, value):
        return {} if value is None else value


class Method(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["reinforcement"]
    reinforcement: Reinforcement
    supervised: None = None  # the other methods' blocks, null as a job object carries them
    dpo: None = None


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


class OpenrftOptions(BaseModel):
    """What OpenAI does not expose. Defaults suit the embedded model on a laptop CPU."""

    model_config = ConfigDict(extra="forbid")
    task: Optional[str] = Field(None, description="take training/validation files, grader and response_format from "
                                "an openrft task (see `openrft data tasks`) where the body leaves them out; "
                                "'auto' = the EuroVoc task when the real data is present, else its offline variant")
    task_options: dict[str, Any] = Field(default_factory=dict, description="options of the task's loader")
    finetune: Literal["lora", "full"] = "lora"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                                    "gate_proj", "up_proj", "down_proj"])
    engine: Literal["transformers"] = Field("transformers", description="the rollout engine; vLLM rollouts in "
                                            "training are not built yet (the vllm engine serves evals and chat)")
    device: str = "cpu"
    precision: Literal["float32", "bfloat16"] = "float32"
    output_dir: Optional[str] = None
    trackers: list[Literal["tensorboard", "wandb", "mlflow", "trackio"]] = Field(default_factory=lambda: ["tensorboard"])
    # sampling
    max_tokens: int = Field(96, description="new tokens per training sample (reasoning included)")
    temperature: float = 1.0
    top_p: float = 1.0
    # algorithm (see openrft.training.algorithm)
    learning_rate: Optional[float] = Field(None, description="base learning rate before the multiplier "
                                           "(default 1e-4 for LoRA, 1e-5 for full fine-tuning)")
    updates_per_batch: int = Field(2, ge=1, description="optimizer passes over one batch of rollouts (clipped ratio)")
    clip_epsilon: float = 0.2
    kl_coef: float = 0.0
    scale_rewards: bool = Field(True, description="divide group advantages by the group's std (GRPO); false = Dr. GRPO")
    truncated: Literal["keep", "mask"] = Field("keep", description="truncated samples: keep their grade, or leave them "
                                               "out of the loss (DAPO's overlong filtering)")
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    max_grader_error_share: float = Field(0.5, description="fail the job when a step's grader error share exceeds it")
    balance: bool = Field(True, description="balance labels in the epoch order (openrft.data.balance_rows)")
    label_key: Optional[str] = Field("labels", description="the row field holding reference labels, if any")
    group_key: Optional[str] = Field(None, description="the row field whose rows belong together (EuroVoc: "
                                     "`celex_id`, an act and its translations): subsets and held-out sets take "
                                     "whole groups; None = every row is its own group")
    labels: Optional[list[str]] = Field(None, description="the label space for P/R/F1 (default: task's or data's)")
    max_train_rows: Optional[int] = None
    max_valid_rows: Optional[int] = None
    max_steps: Optional[int] = Field(None, description="stop after this many steps (a time budget for demos)")
    validate_at_start: bool = Field(True, description="a validation run of the base model at step 0")
    keep_checkpoints: int = 3
    prompts_per_generate: int = 4


class JobSpec(BaseModel):
    """OpenAI's CreateFineTuningJobRequest for the reinforcement method, plus `openrft`."""

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


class JobSpecError(Exception):
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
    if not ext.get("task"):
        return body
    from openrft import paths
    from openrft.tasks import default_task, get_task
    from openrft.tasks.export import export_task

    task = default_task() if ext["task"] == "auto" else get_task(ext["task"])
    body = {**body, "openrft": {**ext, "task": task.name}}
    method = body.setdefault("method", {"type": "reinforcement"})
    rl = method.setdefault("reinforcement", {})
    rl.setdefault("grader", task.grader)
    if "response_format" not in rl:
        rl["response_format"] = task.response_format
    if task.labels and "labels" not in body["openrft"]:
        body["openrft"]["labels"] = task.labels
    if task.group_key and "group_key" not in body["openrft"]:
        body["openrft"]["group_key"] = task.group_key
    if not body.get("training_file") or ("validation_file" not in body):
        out = paths.home() / "tasks" / task.name
        if not (out / "train.jsonl").is_file() or ext.get("task_options"):
            export_task(task, out, balance=False, **(ext.get("task_options") or {}))
        body.setdefault("training_file", str(out / "train.jsonl"))
        body.setdefault("validation_file", str(out / "validation.jsonl"))
    return body


def parse_job(body: dict | str | Path, *, source: str = "job") -> JobSpec:
    if not isinstance(body, dict):
        source = str(body)
        body = load_job_body(body)
    body = materialize_task(body)
    try:
        return JobSpec.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise JobSpecError(f"{source}: {problems}") from exc
