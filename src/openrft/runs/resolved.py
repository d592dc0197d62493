"""`ResolvedJob`: a stored job, read once, answering what every consumer of a job asks.

The trainer (RFT and SFT/DPO loops), the doctor, the dashboard's playground and the API ask it for the rows
(the seeded training subset and the validation subset of whole groups), the label set and field, the sampling
parameters of a training step and of a validation run, the steps that validate, the grader (parsed once) and
the resolved hyperparameters. Nothing else decodes `job.json`.

    job = ResolvedJob.load(run_dir)
    job.train_rows, job.valid_rows, job.labels, job.label_key
    job.train_params(step, rank), job.valid_params(step), job.validation_steps
    job.grader, job.group_size, job.total_steps, job.seed
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openrft.ids import checkpoint_model_name, fine_tuned_model_name
from openrft.runs.files import RunFileError
from openrft.runs.jobs import load_job
from openrft.runs.models import Job, OfflineHyperparameters, Resolved, RlBlock, RlHyperparameters, RunOptions
from openrft.runs.names import checkpoint_base

if TYPE_CHECKING:
    from openrft.engines.base import SamplingParams
    from openrft.graders.base import Grader

DEFAULT_LABEL_KEY = "labels"


class ResolvedJob:
    """A job with its hyperparameters resolved (see `openrft.training.hyperparams`), and its rows."""

    def __init__(self, job: Job, *, source: str = "job.json"):
        self.job = job
        self.source = source
        if job.openrft is None:
            raise RunFileError(f"{source}: openrft: missing (a job that openrft created has it)")
        self.options: RunOptions = job.openrft
        hp = job.method.hyperparameters
        if hp is None or hp.resolved is None:
            raise RunFileError(f"{source}: method.{job.kind}.hyperparameters.resolved: missing (a job that openrft "
                               "created has it)")
        self.hyperparameters: RlHyperparameters | OfflineHyperparameters = hp
        self.resolved: Resolved = hp.resolved

    @classmethod
    def load(cls, run_dir: str | Path) -> "ResolvedJob":
        return cls(load_job(run_dir), source=str(Path(run_dir) / "job.json"))

    # --- what the job is ---

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def kind(self) -> str:
        return self.job.kind

    @property
    def model(self) -> str:
        return self.job.model

    @property
    def run_dir(self) -> Path:
        return Path(self._required(self.options.run_dir, "openrft.run_dir"))

    @property
    def rl(self) -> RlBlock:
        """The reinforcement block (grader, response_format, hyperparameters) of an RFT job."""
        block = self.job.method.reinforcement
        if block is None:
            raise ValueError(f"a {self.kind} job has no reinforcement block")
        return block

    @property
    def grader_spec(self) -> dict[str, Any]:
        return self.rl.grader

    @cached_property
    def grader(self) -> "Grader":
        """The job's grader, built once from its JSON."""
        from openrft.graders import build_grader

        return build_grader(self.rl.grader)

    @property
    def response_format(self) -> dict[str, Any] | None:
        """The RFT job's response_format (None for supervised and dpo jobs)."""
        block = self.job.method.reinforcement
        return block.response_format if block is not None else None

    @property
    def reasoning_effort(self) -> str | None:
        """The reasoning level the engine is given (None for "default": no reasoning segment)."""
        from openrft.engines.reasoning import effort_level

        effort = getattr(self.hyperparameters, "reasoning_effort", None)
        return effort_level(effort)

    # --- the resolved hyperparameters ---

    @property
    def seed(self) -> int:
        return self.resolved.seed

    @property
    def total_steps(self) -> int:
        return self.resolved.total_steps

    @property
    def learning_rate(self) -> float:
        return self.resolved.learning_rate

    @property
    def batch_size(self) -> int:
        return int(self._required(self.hyperparameters.batch_size, "batch_size"))

    @property
    def n_epochs(self) -> int:
        return int(self._required(self.hyperparameters.n_epochs, "n_epochs"))

    @property
    def group_size(self) -> int:
        """Samples per prompt (RFT)."""
        return int(self._required(self.resolved.group_size, "resolved.group_size"))

    @property
    def eval_interval(self) -> int:
        """Steps between validations: the RFT hyperparameter, or one epoch for supervised and dpo jobs."""
        given = self.resolved.eval_interval if self.kind != "reinforcement" else \
            getattr(self.hyperparameters, "eval_interval", None)
        return int(self._required(given, "eval_interval"))

    @property
    def eval_samples(self) -> int:
        """Runs per validation item (RFT)."""
        return int(self._required(getattr(self.hyperparameters, "eval_samples", None), "eval_samples"))

    @property
    def beta(self) -> float:
        """The DPO loss's beta."""
        return float(self._required(getattr(self.hyperparameters, "beta", None), "beta"))

    def is_validation_step(self, step: int) -> bool:
        """Whether `step` (≥ 1) ends with a validation and a checkpoint: every `eval_interval`, and the last."""
        return step % self.eval_interval == 0 or step == self.total_steps

    @property
    def validation_steps(self) -> list[int]:
        """Every step that validates: 0 (the base model, with `validate_at_start` and a validation set) and the
        steps of `is_validation_step`."""
        start = [0] if self.options.validate_at_start and self.validation_path else []
        return start + [s for s in range(1, self.total_steps + 1) if self.is_validation_step(s)]

    # --- rows and labels ---

    @property
    def training_path(self) -> str:
        return self._required(self.options.training_path, "openrft.training_path")

    @property
    def validation_path(self) -> str | None:
        return self.options.validation_path

    @cached_property
    def _train_file(self) -> list[tuple[int, dict]]:
        """(line, row) of every row of the training file, read once."""
        return self._numbered(self.training_path)

    @cached_property
    def all_train_rows(self) -> list[dict]:
        """Every row of the training file (the model-free baselines' label statistics)."""
        return [row for _, row in self._train_file]

    @cached_property
    def numbered_train_rows(self) -> list[tuple[int, dict]]:
        """(line, row) of the rows the job trains on: a seeded subset of at most `max_train_rows` rows spread over
        as many groups (`group_key`) as possible, each group in a seeded random one of its rows, in file order."""
        return self._group_subset(self._train_file, self.options.max_train_rows, any_member=True)

    @cached_property
    def numbered_valid_rows(self) -> list[tuple[int, dict]]:
        """(line, row) of the rows every validation scores: a seeded subset of whole groups (`group_key`) of the
        validation file, at most `max_valid_rows` rows; none without a validation file."""
        if not self.validation_path:
            return []
        return self._group_subset(self._numbered(self.validation_path), self.options.max_valid_rows)

    def _group_subset(self, numbered: list[tuple[int, dict]], limit: int | None, *,
                      any_member: bool = False) -> list[tuple[int, dict]]:
        """`data.splits.group_subset` of numbered rows with the job's seed and group key, their lines kept."""
        from openrft.data.splits import group_subset

        line_of = {id(row): line for line, row in numbered}
        rows = group_subset([row for _, row in numbered], limit, self.seed, self.options.group_key,
                            any_member=any_member)
        return [(line_of[id(row)], row) for row in rows]

    @property
    def train_rows(self) -> list[dict]:
        return [row for _, row in self.numbered_train_rows]

    @property
    def valid_rows(self) -> list[dict]:
        return [row for _, row in self.numbered_valid_rows]

    @property
    def label_key(self) -> str:
        """The row field holding reference labels (`openrft.label_key`, by default "labels")."""
        return self.options.label_key or DEFAULT_LABEL_KEY

    @cached_property
    def labels(self) -> list[str] | None:
        """The label set the run's evals score: the job's `openrft.labels`, else every label of its rows."""
        from openrft.data.labels import label_set

        return self.options.labels or label_set(self.train_rows + self.valid_rows, self.options.label_key)

    def epoch_order(self, n_epochs: int | None = None) -> list[int]:
        """Indices into `train_rows` for all epochs (balanced by labels or shuffled, seeded per epoch)."""
        from openrft.data.order import epoch_order

        return epoch_order(self.train_rows, n_epochs=self.n_epochs if n_epochs is None else n_epochs,
                           seed=self.seed, balance=self.options.balance, label_key=self.options.label_key)

    # --- sampling ---

    def sampling_params(self, n: int, seed: int) -> "SamplingParams":
        """The job's sampling parameters (temperature, top_p, max_tokens, response_format, reasoning effort)."""
        from openrft.engines.base import SamplingParams

        ext = self.options
        return SamplingParams(n=n, temperature=ext.temperature, top_p=ext.top_p, max_tokens=ext.max_tokens,
                              seed=seed, response_format=self.response_format, reasoning_effort=self.reasoning_effort)

    def train_params(self, step: int, rank: int = 0) -> "SamplingParams":
        """A training step's: `group_size` samples per prompt, seeded by the step and the process."""
        return self.sampling_params(self.group_size, self.seed * 100003 + step * 101 + rank)

    def valid_params(self, step: int) -> "SamplingParams":
        """A validation run's: one sample per run, seeded by the step."""
        return self.sampling_params(1, self.seed + 7919 * step)

    # --- names ---

    @property
    def fine_tuned_model(self) -> str:
        """The name the final model gets (`ft:<base>:openrft:<suffix>:<id>`)."""
        return fine_tuned_model_name(self.model, self.job.suffix, self.id)

    def checkpoint_model(self, step: int) -> str:
        return checkpoint_model_name(self.fine_tuned_model, step)

    @property
    def base_model(self) -> str:
        """What the job's adapter checkpoints name as their base model."""
        return checkpoint_base(self.model)

    # --- helpers ---

    def _numbered(self, path: str) -> list[tuple[int, dict]]:
        from openrft.data import load_rows

        return list(enumerate(load_rows(path, method=self.kind), start=1))

    def _required(self, value: Any, field: str) -> Any:
        if value is None or value == "auto":
            raise RunFileError(f"{self.source}: {field}: missing for a {self.kind} job")
        return value
