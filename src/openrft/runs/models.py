"""Typed models of what a run directory holds, on the openai SDK's own types where it has them.

| file | model | SDK base |
|---|---|---|
| `job.json` | `Job` (the hyperparameters with their `resolved` block; the `openrft` block) | `FineTuningJob` |
| `checkpoints/step-N/checkpoint.json` | `Checkpoint` | `FineTuningJobCheckpoint` |
| `events.jsonl` | `Event`; a metrics event's `data` is `MetricsData` | `FineTuningJobEvent` |
| `run.json` of an eval run (`evals/step-N/`, `openrft eval`, the API's) | `EvalRun` | `RunRetrieveResponse` |
| `output_items.jsonl` of an eval run | `OutputItem`, its `Sample` and `Result`s | `OutputItemRetrieveResponse` |

Where openrft stores more than the SDK types (a `paused` status, the `openrft` block, the resolved
hyperparameters, our checkpoint metrics, a sample's parsed answer, reasoning, latency and run, a result's
sub-rewards and error kind) a subclass adds the fields, and where it writes other values than the SDK's types say
(nulls, a data source that records only its item count, a sample's error as text) it overrides them. Every model
keeps unknown keys (`extra="allow"`), so a file written by a newer or older openrft loads and is written back
unchanged.
The grader stays the JSON it was given (`dict`): `openrft.graders` parses it, once, in `ResolvedJob`.

Models are dumped with `to_dict()` (the SDK's, with `exclude_unset=True`): a file holds the keys it was created
with (and those set since), never a null the writer did not write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

from openai.types.evals.eval_api_error import EvalAPIError
from openai.types.evals.run_retrieve_response import (
    PerModelUsage,
    PerTestingCriteriaResult,
    RunRetrieveResponse,
)
from openai.types.evals.runs.output_item_retrieve_response import OutputItemRetrieveResponse
from openai.types.evals.runs.output_item_retrieve_response import Result as SdkResult
from openai.types.evals.runs.output_item_retrieve_response import Sample as SdkSample
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.dpo_hyperparameters import DpoHyperparameters
from openai.types.fine_tuning.jobs.fine_tuning_job_checkpoint import FineTuningJobCheckpoint
from openai.types.fine_tuning.jobs.fine_tuning_job_checkpoint import Metrics as SdkCheckpointMetrics
from openai.types.fine_tuning.reinforcement_hyperparameters import ReinforcementHyperparameters
from openai.types.fine_tuning.supervised_hyperparameters import SupervisedHyperparameters
from pydantic import BaseModel, ConfigDict

from openrft.spec import OpenrftOptions

Number = Union[int, float]  # an int stays an int when the file is written back
JobStatus = Literal["validating_files", "queued", "running", "paused", "succeeded", "failed", "cancelled"]
TERMINAL = ("succeeded", "failed", "cancelled")


class _Record(BaseModel):
    """A model of a run-directory file: unknown keys kept, dumped as it was read."""

    model_config = ConfigDict(extra="allow")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="python", exclude_unset=True)


# --- job.json ---------------------------------------------------------------------------------------------

class Resolved(_Record):
    """What the hyperparameters' "auto" became, and the run's derived sizes (`openrft.training.hyperparams`)."""

    steps_per_epoch: int
    total_steps: int
    learning_rate: float
    seed: int
    rules: dict[str, str] = {}
    group_size: Optional[int] = None  # reinforcement: samples per prompt
    eval_interval: Optional[int] = None  # supervised, dpo: steps between validations (one epoch)


class RlHyperparameters(ReinforcementHyperparameters):
    """A stored RFT job's hyperparameters: every "auto" resolved, and the `resolved` block."""

    model_config = ConfigDict(extra="allow")
    resolved: Optional[Resolved] = None



class OfflineHyperparameters(DpoHyperparameters):
    """A stored supervised or dpo job's hyperparameters (`beta` for dpo only), and the `resolved` block."""

    model_config = ConfigDict(extra="allow")
    resolved: Optional[Resolved] = None



class RlBlock(_Record):
    """`method.reinforcement`: the grader JSON, the response_format and the hyperparameters."""

    grader: dict[str, Any]
    response_format: Optional[dict[str, Any]] = None
    hyperparameters: RlHyperparameters = RlHyperparameters()


class OfflineBlock(_Record):
    """`method.supervised` or `method.dpo`."""

    hyperparameters: OfflineHyperparameters = OfflineHyperparameters()


class JobMethod(_Record):
    type: Literal["supervised", "dpo", "reinforcement"] = "reinforcement"
    supervised: Optional[OfflineBlock] = None
    dpo: Optional[OfflineBlock] = None
    reinforcement: Optional[RlBlock] = None

    @property
    def block(self) -> RlBlock | OfflineBlock | None:
        return getattr(self, self.type)

    @property
    def hyperparameters(self) -> RlHyperparameters | OfflineHyperparameters | None:
        block = self.block
        return block.hyperparameters if block is not None else None


class RunOptions(OpenrftOptions):
    """The job's `openrft` block: the options it was created with, and where its files are on this machine."""

    model_config = ConfigDict(extra="allow")
    run_dir: Optional[str] = None
    training_path: Optional[str] = None
    validation_path: Optional[str] = None


SERVER_PATHS = ("run_dir", "training_path", "validation_path")  # in job.json, never in the API's job object
SUPERVISED_HYPERPARAMETERS = tuple(SupervisedHyperparameters.model_fields)  # OpenAI's top-level `hyperparameters`


class Job(FineTuningJob):
    """`job.json`: OpenAI's `fine_tuning.job`, with a `paused` status, the `openrft` block and `eval_id`."""

    model_config = ConfigDict(extra="allow")
    status: JobStatus  # type: ignore[assignment]  # OpenAI's statuses and `paused`
    hyperparameters: Optional[dict[str, Any]] = None  # type: ignore[assignment]  # null while the job is stored
    method: JobMethod  # type: ignore[assignment]  # required; the grader kept as JSON; resolved hyperparameters
    suffix: Optional[str] = None
    user_provided_suffix: Optional[str] = None
    usage_metrics: Optional[dict[str, Any]] = None
    shared_with_openai: Optional[bool] = None
    eval_id: Optional[str] = None
    openrft: Optional[RunOptions] = None


    @property
    def kind(self) -> str:
        """`method.type`: reinforcement, supervised or dpo."""
        return self.method.type

    @property
    def task(self) -> str | None:
        """What the job trains on: the task of its `openrft` block or metadata, else its training file's name."""
        if self.openrft is not None and self.openrft.task:
            return self.openrft.task
        if self.metadata and self.metadata.get("task"):
            return self.metadata["task"]
        return Path(self.training_file).name if self.training_file else None


# --- checkpoints/step-N/checkpoint.json -----------------------------------------------------------------

class CheckpointMetrics(SdkCheckpointMetrics):
    """OpenAI's checkpoint metrics (the SFT/DPO losses and accuracies) and the RFT ones openrft adds."""

    model_config = ConfigDict(extra="allow")
    step: Optional[Number] = None  # written as an int (the SDK says float)
    train_mean_reward: Optional[float] = None
    full_valid_mean_reward: Optional[float] = None
    valid_reward_mean: Optional[float] = None  # an older spelling of full_valid_mean_reward

    @property
    def valid_reward(self) -> float | None:
        return self.full_valid_mean_reward if self.full_valid_mean_reward is not None else self.valid_reward_mean


class Checkpoint(FineTuningJobCheckpoint):
    """`checkpoint.json`: OpenAI's `fine_tuning.job.checkpoint`."""

    model_config = ConfigDict(extra="allow")
    metrics: CheckpointMetrics



# --- events.jsonl -----------------------------------------------------------------------------------------

class GraderFigures(_Record):
    """One grader's entry in `scores.graders`, `errors.graders`, `timing.graders` or `usage.graders`: its name
    and type, and `train_*` / `valid_*` figures (kept as extra keys)."""

    name: Optional[str] = None
    type: Optional[str] = None

    def figure(self, key: str) -> Any:
        return (self.model_extra or {}).get(key)


class Scores(_Record):
    train_reward_mean: Optional[float] = None
    valid_reward_mean: Optional[float] = None
    graders: list[GraderFigures] = []


class Usage(_Record):
    samples: dict[str, Optional[Number]] = {}  # train_/valid_ reasoning, completion, answer tokens: mean, count
    graders: list[GraderFigures] = []


class Errors(_Record):
    graders: list[GraderFigures] = []


class StepTiming(_Record):
    sampling: Optional[float] = None
    training: Optional[float] = None
    eval: Optional[float] = None
    full_iteration: Optional[float] = None


class Timing(_Record):
    step: StepTiming = StepTiming()
    graders: list[GraderFigures] = []


class ValidFigures(_Record):
    """The trainer's `valid` block: the step's validation run in brief (`openrft.evals` summary)."""

    reward_mean: Optional[float] = None
    ci95: Optional[Any] = None
    run_to_run_std: Optional[float] = None
    headroom: Optional[float] = None
    completion_tokens_mean: Optional[float] = None
    precision: Optional[float] = None
    recall: Optional[float] = None
    f1: Optional[float] = None
    macro_f1: Optional[float] = None
    predicted_label_counts: Optional[dict[str, Number]] = None
    baselines: Optional[dict[str, dict[str, Any]]] = None


class MetricsData(_Record):
    """A metrics event's `data`: OpenAI's `scores / usage / errors / timing` (openai-rft-api.md §1.8), plus
    `train` (the RL internals: loss, kl, clip_fraction, zero_signal_share, label counts…) and `valid`.

    Supervised and dpo steps carry OpenAI's flat SFT keys (`train_loss`, `valid_loss`, `full_valid_loss`,
    `train_mean_token_accuracy`…) as extra keys; RFT steps also carry the flat `train_mean_reward` and
    `full_valid_mean_reward` that older readers and OpenAI's results CSV use."""

    step: int
    total_steps: Optional[int] = None
    scores: Optional[Scores] = None
    usage: Optional[Usage] = None
    errors: Optional[Errors] = None
    timing: Optional[Timing] = None
    train: Optional[dict[str, Any]] = None
    valid: Optional[ValidFigures] = None
    train_mean_reward: Optional[float] = None
    full_valid_mean_reward: Optional[float] = None
    full_valid_mean_parse_error: Optional[float] = None
    completion_tokens_mean: Optional[float] = None
    reasoning_tokens_mean: Optional[float] = None
    valid_reasoning_tokens_mean: Optional[float] = None

    @property
    def train_reward(self) -> float | None:
        given = self.scores.train_reward_mean if self.scores else None
        return given if given is not None else self.train_mean_reward

    @property
    def valid_reward(self) -> float | None:
        given = self.scores.valid_reward_mean if self.scores else None
        return given if given is not None else self.full_valid_mean_reward

    def flat(self, key: str) -> Any:
        """A flat key of the event (`train_loss`, `full_valid_loss`…), declared or extra."""
        return getattr(self, key, None) if key in type(self).model_fields else (self.model_extra or {}).get(key)


class Event(FineTuningJobEvent):
    """A line of `events.jsonl`: OpenAI's `fine_tuning.job.event`."""

    model_config = ConfigDict(extra="allow")

    @property
    def metrics(self) -> MetricsData | None:
        """The data of a metrics event, typed; None for a message event."""
        if self.type != "metrics" or not isinstance(self.data, dict) or not isinstance(self.data.get("step"), int):
            return None
        return MetricsData.model_validate(self.data)


# --- eval runs: run.json, output_items.jsonl ----------------------------------------------------------------

class EvalRun(RunRetrieveResponse):
    """`run.json` and the API's `eval.run`: OpenAI's eval run, built by `openrft.evals.run.eval_run` (the API's
    object is a queued run's, given the counts and usage of its run.json: `openrft.service.evals.run_object`)."""

    model_config = ConfigDict(extra="allow")
    # run.json's data source is the item count (`{"type": "jsonl", "source": {"type": "file_content", "count": N}}`,
    # no content) and the API's is the request's as given: JSON, not the SDK's request types
    data_source: dict[str, Any]  # type: ignore[assignment]
    error: Optional[EvalAPIError]  # type: ignore[assignment]  # null unless the run failed
    report_url: Optional[str]  # type: ignore[assignment]  # null: no hosted report
    per_model_usage: Optional[list[PerModelUsage]]  # type: ignore[assignment]  # null while queued
    per_testing_criteria_results: Optional[list[PerTestingCriteriaResult]]  # type: ignore[assignment]


class Result(SdkResult):
    """One criterion's grade of a sample, with the grader's sub-rewards, error kind and error flags."""

    model_config = ConfigDict(extra="allow")
    score: Number  # an int reward stays an int when the file is written back
    sub_rewards: Optional[dict[str, Any]] = None
    error_kind: Optional[str] = None
    errors: Optional[dict[str, Any]] = None


class Sample(SdkSample):
    """The graded sample: OpenAI's, with the parsed answer, the reasoning, the latency and which run it was."""

    model_config = ConfigDict(extra="allow")
    input: list[dict[str, Any]]  # type: ignore[assignment]  # the row's messages as given (tool calls, null content)
    # the engine's or the answer's parse error as text, or null; the API returns {code, message}
    error: Optional[str]  # type: ignore[assignment]
    seed: Optional[int]  # type: ignore[assignment]  # null: unseeded (given samples)
    temperature: Number  # as given: an int stays an int
    top_p: Number
    output_json: Any = None
    reasoning: Optional[str] = None
    latency_s: Optional[float] = None
    run: Optional[int] = None  # which of the `runs` samples of the item this is


class OutputItem(OutputItemRetrieveResponse):
    """A line of `output_items.jsonl`: OpenAI's `eval.run.output_item`, one graded sample; status pass, fail or
    error (the engine failed)."""

    model_config = ConfigDict(extra="allow")
    results: list[Result]  # type: ignore[assignment]  # list is invariant
    sample: Sample

    @property
    def reward(self) -> float | None:
        """The first criterion's score (the RFT grader's when there is one)."""
        return self.results[0].score if self.results else None
