"""`openrft demo`: the whole workflow on the embedded defaults, every stage scored on the same held-out acts.

The stages, in order (`STAGES`):

1. `base`          the embedded model with the task's default prompt (EuroVoc: `short`);
2. `base+prompt`   the embedded model with the task's best prompt variant, chosen by reward on the jobs'
                   validation rows, never on the held-out rows;
3. `sft`           `examples/eurovoc/sft.yaml` (`method.type: supervised`) on the task's reference answers written
                   with the chosen prompt (`openrft data export … --method supervised`);
4. `rft`           `examples/eurovoc/job.yaml` (`job_long.yaml` with `--long`, `job_full.yaml` with `--full`) from the
                   base model, on the chosen prompt's rows;
5. `sft+rft`       the same RFT job starting from stage 3's final checkpoint (`model:` a checkpoint directory);
6. `rft-long`      with `--equal-cpu` only: stage 4's job for as many steps as the CPU time of stages 3 and 5
                   together buys at stage 4's measured cost per step (`equal_cpu_steps`, per seed), so that RFT
                   alone and SFT→RFT are compared at equal cost (`openrft.workflow_verdict.equal_cpu`: the
                   paired difference per seed).

The jobs are created and run by `openrft.training.create_job` / `run_job`, the stages are scored by
`openrft.evals.run_eval`: the code a user runs with `openrft train` and `openrft eval`. Each stage's model is its
job's final model (no checkpoint is picked on validation, so no selection flatters a stage).

The task's validation file is split once, by act (`celex_id`), whatever the seeds (`DRAW_SEED`): `max_valid_rows`
records that every job of every seed validates on and the prompt choice is made on (`job_validation.jsonl` in each
data folder), and the held-out records: one of each act left (or `--held-out` records), sharing no act with those
or with the training file. A one-seed run and a three-seed run are scored on the same acts. Every stage is scored
by the same grader, response_format, sampling settings and runs per item on them; the baselines (most-frequent
labels, random labels, every label, and a TF-IDF text classifier fitted on the training file) are graded on the
same rows. `--seeds N` repeats the training stages (3-5) for seeds seed … seed+N-1; the base evals (stages 1-2,
the prompt choice) run once and are shared. What is printed and written (`workflow.json`, `workflow.png`) is built
in `openrft.workflow_verdict`; with several seeds `workflow.json` is also written after each seed (`"complete":
false`), so that a run stopped later keeps the seeds it finished.

The default budget (`BUDGETS["quick"]`) aims at about 15 minutes on a 2-core CPU: SFT three epochs of 24 steps of 4
rows, RFT and SFT→RFT 8 steps of 4 prompts × 8 samples each with one validation at the end (measured: about 16
min for one seed, 45 min for three, on the short prompt; README). Every stage records its wall time and this process's
CPU time, for training and for its held-out eval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from openrft.demo import EXAMPLES, held_out_rows, records_of
from openrft.tasks.base import Task

if TYPE_CHECKING:
    from openrft.engines import SamplingParams

STAGES = ("base", "base+prompt", "sft", "rft", "sft+rft", "rft-long")
STAGE_TITLES = {"base": "base, default prompt", "base+prompt": "base, chosen prompt", "sft": "SFT",
                "rft": "RFT", "sft+rft": "SFT → RFT", "rft-long": "RFT, longer"}
TRAINED = ("sft", "rft", "sft+rft", "rft-long")
# Seeds every draw that the seeds share, so that `--seed` / `--seeds` change training and nothing else: the jobs'
# validation acts (DRAW_SEED), the held-out acts when fewer than all are asked for and the evals' sampling
# (DRAW_SEED + 1), the random baseline (DRAW_SEED). 42 is the example jobs' seed: a one-seed run is seed 42 of a
# three-seed run, row for row.
DRAW_SEED = 42
JOB_VALIDATION = "job_validation.jsonl"  # the rows every job of every seed validates on, in each data folder
VALIDATION_ROWS = 24  # their number when the job file validates on every row (job_full.yaml): the rest is held out


@dataclass(frozen=True)
class Budget:
    """How much each training stage does. None: what the example job file says."""

    name: str
    rft_job: str  # the RFT job file under examples/eurovoc/
    sft_epochs: int  # n_epochs of the SFT job (`--sft-epochs`)
    sft_train_rows: int | None  # max_train_rows of the SFT job (0: every row)
    rft_steps: int | None
    rft_eval_interval: int | None  # validations of the RFT jobs (None: the job file's)
    validate_at_start: bool  # the RFT jobs' step-0 validation (the base model; the prompt choice scored it already)
    rft_long_steps: int | None = None  # the `rft-long` stage (--equal-cpu) when its steps cannot be measured (None:
    #                                    the stage is skipped then)


BUDGETS = {
    # meant for ~15 min on a 2-core CPU: SFT three epochs of 96 acts, one row each (3 × 24 steps of 4 rows: on the
    # 24 validation acts, own − other rose from about 0 after one epoch to +0.07-0.12 after 3-4, and held out SFT
    # alone went from +0.006/+0.015/−0.002 to +0.035/+0.028/+0.027 over seeds 42-44; README);
    # RFT 8 × 4 prompts × 8 samples, validated once at the end
    # --equal-cpu: RFT alone for as many steps as SFT's and SFT→RFT's CPU time buys (`equal_cpu_steps`); 24 (one
    # epoch) when that cannot be measured
    "quick": Budget("quick", "job.yaml", sft_epochs=3, sft_train_rows=96, rft_steps=8, rft_eval_interval=8,
                    validate_at_start=False, rft_long_steps=24),
    # one epoch over 192 training rows (every act, then translations) for both methods (48 steps each),
    # validations as job_long.yaml
    "long": Budget("long", "job_long.yaml", sft_epochs=1, sft_train_rows=192, rft_steps=None, rft_eval_interval=None,
                   validate_at_start=True),
    # every training row: SFT one epoch, RFT as job_full.yaml (two epochs; hours on a CPU)
    "full": Budget("full", "job_full.yaml", sft_epochs=1, sft_train_rows=0, rft_steps=None, rft_eval_interval=None,
                   validate_at_start=True),
}


@dataclass
class Clock:
    """Wall time and this process's CPU time (all its threads; the grader sandbox's processes are not in it)."""

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


@dataclass
class StageRun:
    """One stage of one seed: the model it scored, its held-out eval and what it cost."""

    stage: str
    seed: int | None  # None for the shared base stages
    prompt: str
    model: str
    status: str = "succeeded"
    error: str | None = None
    run_dir: Path | None = None  # the training job's run directory
    eval_dir: Path | None = None
    result: object = None  # the held-out EvalResult
    train: Clock = field(default_factory=Clock)
    evaluation: Clock = field(default_factory=Clock)
    note: str = ""


@dataclass
class HeldOut:
    """The held-out records (one list per prompt variant, the same ids in the same order) and what they exclude."""

    rows: dict[str, list[dict]]
    n_groups: int
    group_key: str | None
    excluded_validation_groups: set[str]
    training_groups: int

    @property
    def records(self) -> str:
        first = next(iter(self.rows.values()))
        return records_of(len(first), self.n_groups, self.group_key)


@dataclass
class Plan:
    """What every stage shares: the task's files per prompt, the RFT job body, the eval settings."""

    task: Task
    out: Path
    budget: Budget
    seeds: list[int]
    max_steps: int | None
    data: dict[str, Path]  # prompt → folder with train.jsonl / validation.jsonl / job_validation.jsonl (RFT rows)
    validation_ids: list[str]  # the ids of the job_validation.jsonl rows, in every folder
    rft_body: dict  # the RFT job body of the budget, before its per-stage overrides
    rft_steps_per_epoch: int  # of that job (its rows over its batch size)
    runs: int  # runs per item of every eval (the RFT job's eval_samples)
    device: str
    grader: dict
    params: SamplingParams  # of every eval
    labels: list[str] | None
    label_key: str
    group_key: str | None
    train_rows: list[dict]  # the training file (the baselines' label statistics)

    @property
    def base_model(self) -> str:
        return self.rft_body["model"]


def export_prompts(task: Task, out: Path) -> dict[str, Path]:
    """The task's RFT rows for each of its prompt variants (`openrft data export TASK --prompt P`), unbalanced as
    the trainer wants them: `out/<prompt>/{train,validation}.jsonl`."""
    from openrft.tasks.export import export_task

    folders = {}
    for prompt in task.prompts or ("default",):
        options: dict[str, Any] = {"prompt": prompt} if task.prompts else {}
        export_task(task, out / prompt, balance=False, **options)
        folders[prompt] = out / prompt
    return folders


def export_supervised(task: Task, out: Path, prompt: str, validation_ids: list[str]) -> Path:
    """The task's SFT rows (reference answers) with `prompt`, with the jobs' validation rows picked out:
    `out/<prompt>-supervised/`."""
    from openrft.tasks.export import export_task

    folder = out / f"{prompt}-supervised"
    options: dict[str, Any] = {"prompt": prompt} if task.prompts else {}
    export_task(task, folder, balance=False, method="supervised", **options)
    write_job_validation(folder, validation_ids, method="supervised")
    return folder


def rows_by_id(folder: Path, ids: list[str], method: str = "reinforcement") -> list[dict]:
    """The rows of `folder/validation.jsonl` with these ids, in this order (every data folder of a plan holds the
    same records, as `openrft data export` writes them for each prompt and method)."""
    from openrft.data import load_rows

    path = folder / "validation.jsonl"
    rows = load_rows(path, method=method)
    record_ids(rows, path)
    by_id = {row["id"]: row for row in rows}
    if len(by_id) < len(rows):
        raise ValueError(f"{path}: {len(rows) - len(by_id)} rows repeat an id (each record needs its own)")
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"{path}: lacks the ids {missing[:5]} (every prompt variant and method must hold the same "
                         "rows with the same ids)")
    return [by_id[i] for i in ids]


def record_ids(rows: list[dict], path: Path) -> list[str]:
    """The rows' `id` fields: what matches a record across the prompt variants' and methods' files."""
    if any(not isinstance(row.get("id"), str) for row in rows):
        raise ValueError(f"{path}: every row needs a string `id` (the same record in every prompt variant's file)")
    return [row["id"] for row in rows]


def write_job_validation(folder: Path, ids: list[str], method: str = "reinforcement") -> Path:
    """`folder/job_validation.jsonl`: the validation rows with these ids, the file every job validates on."""
    from openrft.data import write_rows

    return write_rows(rows_by_id(folder, ids, method), folder / JOB_VALIDATION)


def make_plan(task: Task, out: Path, budget: Budget, seeds: list[int], max_steps: int | None) -> Plan:
    """The RFT job body of the budget on the task's default prompt, and the eval settings every stage shares: the
    job's grader, runs per item (eval_samples), sampling parameters (seeded with DRAW_SEED + 1) and label set (the
    job's labels, else every label of its training file), as `openrft.runs.ResolvedJob` answers them; the jobs'
    validation rows are drawn here, once (`job_validation.jsonl` in every prompt's folder)."""
    from openrft.data import load_rows
    from openrft.data.labels import label_set
    from openrft.data.splits import group_subset
    from openrft.runs import ResolvedJob
    from openrft.spec import load_job_body, parse_job
    from openrft.training.job import build_job

    data = export_prompts(task, out / "data")
    default = next(iter(data))
    body = load_job_body(EXAMPLES / budget.rft_job)
    ext = body.setdefault("openrft", {})
    ext.pop("task", None)  # the files, grader and response_format are given explicitly below
    validation = group_subset(load_rows(data[default] / "validation.jsonl"),
                              ext.get("max_valid_rows") or VALIDATION_ROWS, DRAW_SEED, task.group_key)
    validation_ids = record_ids(validation, data[default] / "validation.jsonl")
    for folder in data.values():
        write_job_validation(folder, validation_ids)
    body.update(training_file=str(data[default] / "train.jsonl"), validation_file=str(data[default] / JOB_VALIDATION))
    body["method"]["reinforcement"].update(grader=task.grader, response_format=task.response_format)
    ext.update(group_key=task.group_key, label_key=task.label_key)
    if task.labels:
        ext["labels"] = list(task.labels)
    steps = max_steps or budget.rft_steps
    if steps:
        ext["max_steps"] = steps
    if budget.rft_eval_interval:
        body["method"]["reinforcement"]["hyperparameters"]["eval_interval"] = min(budget.rft_eval_interval, steps or
                                                                                  budget.rft_eval_interval)
    ext["validate_at_start"] = budget.validate_at_start
    spec = parse_job(body)
    train_rows = load_rows(body["training_file"])  # the whole file: the baselines' label statistics
    job = ResolvedJob(build_job(spec, job_id="ftjob-workflow", run_dir=None, train_path=Path(body["training_file"]),
                                valid_path=Path(body["validation_file"]), n_rows=len(train_rows)),
                      source=str(EXAMPLES / budget.rft_job))
    return Plan(task=task, out=out, budget=budget, seeds=seeds, max_steps=max_steps, data=data,
                validation_ids=validation_ids, rft_body=body, rft_steps_per_epoch=job.resolved.steps_per_epoch,
                runs=job.eval_samples, device=job.options.device,
                grader=job.grader_spec, params=job.sampling_params(1, DRAW_SEED + 1),
                labels=job.options.labels or label_set(train_rows, job.options.label_key), label_key=job.label_key,
                group_key=job.options.group_key, train_rows=train_rows)


def job_validation(plan: Plan, prompt: str) -> list[dict]:
    """The rows every job validates on, with `prompt`: `max_valid_rows` records of the validation file spread over
    groups, drawn once with DRAW_SEED (`make_plan`), the same for every seed."""
    from openrft.data import load_rows

    return load_rows(plan.data[prompt] / JOB_VALIDATION)


def held_out_set(plan: Plan, rows: int | None = None) -> HeldOut:
    """`rows` validation-file records of groups that neither the jobs' validation rows nor the training file touch,
    the same records in every prompt variant. None: one of each group left, its first in the file (EuroVoc: 78 of
    the 86 in English); fewer: that many groups drawn with DRAW_SEED + 1, again each its first row."""
    from openrft.data import load_rows
    from openrft.data.splits import groups_in

    default = next(iter(plan.data))
    valid = load_rows(plan.data[default] / "validation.jsonl")
    excluded = groups_in(job_validation(plan, default), plan.group_key)
    if rows is None:
        rows = len(groups_in(valid, plan.group_key) - excluded - groups_in(plan.train_rows, plan.group_key))
    chosen = held_out_rows(valid, plan.train_rows, rows=rows, seed=DRAW_SEED + 1, group_key=plan.group_key,
                           exclude_groups=excluded) if rows else []
    ids = record_ids(chosen, plan.data[default] / "validation.jsonl")
    by_prompt = {prompt: chosen if prompt == default else rows_by_id(folder, ids)
                 for prompt, folder in plan.data.items()}
    return HeldOut(rows=by_prompt, n_groups=len(groups_in(chosen, plan.group_key)), group_key=plan.group_key,
                   excluded_validation_groups=excluded, training_groups=len(groups_in(plan.train_rows, plan.group_key)))


def evaluate(plan: Plan, model: str, rows: list[dict], out_dir: Path, name: str, text_baseline: bool = False):
    """One eval run of `model` on `rows` with the plan's grader, sampling settings, runs, labels and baselines
    (with `text_baseline`, the text classifier fitted on the plan's training rows, whose prompt is the default's:
    the base stage's eval, which scores the default prompt's rows)."""
    from openrft.engines.transformers import TransformersEngine
    from openrft.evals import run_eval

    engine = TransformersEngine.from_name(model, device=plan.device)
    return run_eval(rows, engine=engine, grader=plan.grader, runs=plan.runs, params=plan.params, out_dir=out_dir,
                    name=name, train_rows=plan.train_rows, labels=plan.labels, label_key=plan.label_key,
                    seed=DRAW_SEED, group_key=plan.group_key, text_baseline=text_baseline)


@dataclass
class PromptChoice:
    """The prompt variant chosen on the jobs' validation rows, each variant's base-model reward there, and each
    other variant's paired difference to the default (`demo.paired_gain`: diff, ci95 clustered by group)."""

    chosen: str
    rewards: dict[str, float] = field(default_factory=dict)
    versus_default: dict[str, dict] = field(default_factory=dict)


def choose_prompt(plan: Plan, console: Console) -> PromptChoice:
    """The prompt variant whose base-model reward is highest on the jobs' validation rows (ties: the default);
    with one variant, that one. The choice is by the point estimate; the CI of each difference to the default says
    how much the validation rows can tell apart."""
    from openrft.demo import paired_gain

    prompts = list(plan.data)
    if len(prompts) == 1:
        return PromptChoice(prompts[0])
    results = {}
    for prompt in prompts:
        rows = job_validation(plan, prompt)
        results[prompt] = evaluate(plan, plan.base_model, rows, plan.out / "prompt-choice" / prompt,
                                   f"base, prompt {prompt}")
    rewards = {p: r.summary["reward"]["mean"] for p, r in results.items()}
    chosen = max(prompts, key=lambda p: (rewards[p], p == prompts[0]))
    versus = {p: paired_gain(results[prompts[0]], results[p], plan.group_key, f"prompt {p} − {prompts[0]}")
              for p in prompts[1:]}
    console.print("prompt choice on the validation rows: " + ", ".join(f"{p} {r:.3f}" for p, r in rewards.items())
                  + f" → [bold]{chosen}[/] (" + "; ".join(
                      f"{p} − {prompts[0]} {d['diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
                      for p, d in versus.items()) + ")")
    return PromptChoice(chosen, rewards, versus)


def train(body: dict, console: Console) -> tuple[Path, dict]:
    """Create and run one job (`openrft train`); its run directory and final job object."""
    from openrft.dashboard import report_finished_job
    from openrft.training import create_job, run_job

    job = create_job(body)
    run_dir = Path(job["openrft"]["run_dir"])
    console.print(f"job {job['id']} ({body['method']['type']}, model {body['model']}): run dir {run_dir}")
    finished = run_job(run_dir)
    report_finished_job(run_dir, finished["status"])
    return run_dir, finished


def sft_body(plan: Plan, folder: Path, seed: int, out: Path) -> dict:
    """`examples/eurovoc/sft.yaml` on the SFT rows in `folder`, with the budget's epochs and rows (`--max-steps`
    caps its steps)."""
    from openrft.spec import load_job_body

    body = load_job_body(EXAMPLES / "sft.yaml")
    ext = body.setdefault("openrft", {})
    ext.pop("task", None)
    body.update(training_file=str(folder / "train.jsonl"), validation_file=str(folder / JOB_VALIDATION), seed=seed)
    ext.update(output_dir=str(out), group_key=plan.group_key, label_key=plan.label_key,
               max_valid_rows=plan.rft_body["openrft"].get("max_valid_rows"))
    body["method"]["supervised"]["hyperparameters"]["n_epochs"] = plan.budget.sft_epochs
    if plan.budget.sft_train_rows is not None:
        ext["max_train_rows"] = plan.budget.sft_train_rows
    if plan.max_steps:
        ext["max_steps"] = plan.max_steps
    return body


def rft_body(plan: Plan, prompt: str, seed: int, out: Path, model: str, steps: int | None = None) -> dict:
    """The budget's RFT job on the chosen prompt's rows, from `model` (the base model or a checkpoint); `steps`:
    that many steps instead of the budget's, validated once at the end, over as many epochs as they need (a job
    ends with its last epoch whatever its max_steps)."""
    import copy
    import math

    body = copy.deepcopy(plan.rft_body)
    body.update(model=model, seed=seed, training_file=str(plan.data[prompt] / "train.jsonl"),
                validation_file=str(plan.data[prompt] / JOB_VALIDATION))
    body["openrft"]["output_dir"] = str(out)
    if steps:
        hyper = body["method"]["reinforcement"]["hyperparameters"]
        body["openrft"]["max_steps"] = hyper["eval_interval"] = steps
        hyper["n_epochs"] = math.ceil(steps / plan.rft_steps_per_epoch)
    if model != plan.rft_body["model"]:
        body["suffix"] = f"{body.get('suffix') or 'rft'}-from-sft"
    return body


def score(plan: Plan, run: StageRun, held: HeldOut, out_dir: Path, console: Console) -> StageRun:
    """Score `run.model` on the held-out rows of `run.prompt`; a crash becomes the stage's error."""
    console.rule(f"held out: {STAGE_TITLES[run.stage]}" + (f", seed {run.seed}" if run.seed is not None else ""))
    try:
        with run.evaluation:
            run.result = evaluate(plan, run.model, held.rows[run.prompt], out_dir, STAGE_TITLES[run.stage],
                                  text_baseline=run.stage == "base")
        run.eval_dir = out_dir
    except Exception as exc:  # one stage's failure must not lose the others: it is reported as failed
        run.status, run.error = "failed", f"held-out eval: {type(exc).__name__}: {exc}"
        console.print(f"[red]{STAGE_TITLES[run.stage]} failed[/]: {run.error}")
    return run


def train_stage(plan: Plan, stage: str, seed: int, prompt: str, body: dict, held: HeldOut,
                console: Console) -> StageRun:
    """Run one training stage's job, check that it validated on no held-out act, score its final model."""
    from openrft.demo import validation_groups

    console.rule(f"[bold]{STAGE_TITLES[stage]}[/], seed {seed}")
    run = StageRun(stage, seed, prompt, model="")
    try:
        with run.train:
            run.run_dir, job = train(body, console)
    except Exception as exc:  # reported as a failed stage; the next stages still run
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
        console.print(f"[red]{STAGE_TITLES[stage]} failed[/]: {run.error}")
        return run
    if job["status"] != "succeeded":
        run.status, run.error = "failed", f"job {job['status']}: {(job.get('error') or {}).get('message', '')}"
        console.print(f"[red]{STAGE_TITLES[stage]} failed[/]: {run.error}")
        return run
    leaked = validation_groups(run.run_dir) - held.excluded_validation_groups
    if leaked:
        raise RuntimeError(f"{run.run_dir}: the job validated on groups the held-out set did not exclude: "
                           f"{sorted(leaked)[:5]}")
    run.model = str(run.run_dir / "checkpoints" / "final")
    return score(plan, run, held, run.run_dir / "held_out", console)


def equal_cpu_steps(sft: StageRun, rft: StageRun, sft_rft: StageRun) -> int | None:
    """The steps of the `rft-long` stage: RFT alone for about the training CPU time of SFT and SFT→RFT together.

    RFT's cost per step is measured on this seed's `rft` stage: its steps' share of the stage's wall time (the
    steps' sampling and training time in its metrics events) times the stage's CPU time; the rest of that CPU
    time (loading, the final validation) is paid once by `rft-long` too. None when a stage failed or the `rft`
    stage left no step timings."""
    from openrft.runs.events import read_metrics

    if any(r.status != "succeeded" for r in (sft, rft, sft_rft)) or rft.run_dir is None or rft.train.wall <= 0:
        return None
    steps = [m.timing.step for m in read_metrics(rft.run_dir) if m.timing is not None]
    step_wall = sum((t.sampling or 0.0) + (t.training or 0.0) for t in steps)
    if not steps or step_wall <= 0:
        return None
    step_cpu = rft.train.cpu * step_wall / rft.train.wall / len(steps)
    once = rft.train.cpu - step_cpu * len(steps)
    return max(len(steps), round((sft.train.cpu + sft_rft.train.cpu - once) / step_cpu))


def run_workflow(*, budget: str = "quick", seeds: list[int] | None = None, output_dir: Path | None = None,
                 held_out: int | None = None, max_steps: int | None = None, task: Task | None = None,
                 equal_cpu: bool = False, sft_epochs: int | None = None, console: Console | None = None) -> dict:
    """Run the five stages (the training ones for every seed; with `equal_cpu` the sixth too) and judge them on
    the same held-out rows; `workflow.json` and `workflow.png` are written in the output folder and the summary
    is returned. `sft_epochs`: the SFT stage's epochs instead of the budget's."""
    from openrft import paths
    from openrft.spec import load_job_body
    from openrft.tasks import default_task
    from openrft.workflow_verdict import print_summary, summarize, workflow_chart, write_summary

    console = console or Console()
    plan_budget = BUDGETS[budget]
    if sft_epochs is not None:
        if sft_epochs < 1:
            raise ValueError(f"--sft-epochs: {sft_epochs} (give 1 or more)")
        plan_budget = replace(plan_budget, sft_epochs=sft_epochs)
    if seeds is None:
        seeds = [int(load_job_body(EXAMPLES / plan_budget.rft_job).get("seed", 0))]
    task = task or default_task()
    out = Path(output_dir or paths.home() / "demos" / f"{time.strftime('%Y%m%d-%H%M%S')}-workflow")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: give another output folder (--out)")
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    console.rule(f"[bold]openrft demo[/]: the workflow on {task.name} ({plan_budget.name} budget, seeds {seeds})")
    with Clock() as preparing:
        plan = make_plan(task, out, plan_budget, seeds, max_steps)
        held = held_out_set(plan, held_out)
    default = next(iter(plan.data))
    if not held.rows[default]:
        raise ValueError("no validation groups are left over for a held-out set: lower --held-out or the jobs' "
                         "max_valid_rows")
    console.print(f"held out: {held.records} × {plan.runs} runs, sharing no group with the training file "
                  f"({held.training_groups} groups) or with any job's validation rows "
                  f"({len(held.excluded_validation_groups)} groups); output in {out}")

    with Clock() as choosing:
        choice = choose_prompt(plan, console)
    chosen = choice.chosen
    runs = [score(plan, StageRun("base", None, default, plan.base_model), held, out / "held_out" / "base", console)]
    if chosen == default:
        runs.append(StageRun("base+prompt", None, chosen, plan.base_model, status=runs[0].status,
                             error=runs[0].error, eval_dir=runs[0].eval_dir, result=runs[0].result,
                             note=f"the default prompt {default!r} scored best on validation: stage 1's eval"))
    else:
        runs.append(score(plan, StageRun("base+prompt", None, chosen, plan.base_model), held,
                          out / "held_out" / f"base-{chosen}", console))
    sft_rows = export_supervised(task, out / "data", chosen, plan.validation_ids)
    for seed in seeds:
        seed_dir = out / f"seed-{seed}"
        sft = train_stage(plan, "sft", seed, chosen, sft_body(plan, sft_rows, seed, seed_dir / "sft"), held, console)
        rft = train_stage(plan, "rft", seed, chosen, rft_body(plan, chosen, seed, seed_dir / "rft", plan.base_model),
                          held, console)
        if sft.status == "succeeded" and sft.run_dir is not None:
            sft_rft = train_stage(plan, "sft+rft", seed, chosen,
                                  rft_body(plan, chosen, seed, seed_dir / "sft+rft", sft.model), held, console)
            sft_rft.note = f"starts from {sft.model}"
        else:
            sft_rft = StageRun("sft+rft", seed, chosen, "", status="skipped", error="its SFT stage failed")
        runs += [sft, rft, sft_rft]
        if equal_cpu:
            measured = None if max_steps else equal_cpu_steps(sft, rft, sft_rft)
            steps = max_steps or measured or plan_budget.rft_long_steps
            if steps:
                console.print(f"RFT, longer: {steps} steps, " + (
                    f"about the training CPU time of SFT and SFT → RFT ({sft.train.cpu + sft_rft.train.cpu:.0f} s) "
                    "at RFT's measured cost per step" if measured else "--max-steps" if max_steps else
                    "the budget's (RFT's cost per step could not be measured)"))
                runs.append(train_stage(plan, "rft-long", seed, chosen,
                                        rft_body(plan, chosen, seed, seed_dir / "rft-long", plan.base_model,
                                                 steps=steps), held, console))
            else:  # a budget without a fallback (--long, --full) runs the stage only when it can size it
                runs.append(StageRun("rft-long", seed, chosen, "", status="skipped",
                                     error="RFT's cost per step could not be measured and the budget gives no steps"))
                console.print(f"[yellow]RFT, longer: skipped[/]: {runs[-1].error}")
        if seed != seeds[-1]:  # the figures so far, in case a later seed never finishes
            partial = summarize(runs, held, plan, choice=choice, console=Console(quiet=True))
            write_summary({**partial, "complete": False, "seeds_done": seeds[:seeds.index(seed) + 1]},
                          out / "workflow.json")

    summary = summarize(runs, held, plan, choice=choice, console=console)
    summary["complete"] = True
    summary["timing"] = {"prepare_wall_s": preparing.wall, "prompt_choice_wall_s": choosing.wall,
                         "prompt_choice_cpu_s": choosing.cpu, "total_wall_s": time.perf_counter() - began}
    summary["chart"] = str(workflow_chart(summary, out / "workflow.png"))
    write_summary(summary, out / "workflow.json")
    print_summary(summary, console)
    return summary
