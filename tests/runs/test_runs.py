"""openrft.runs: the typed run directory. `old_run/` is a real run directory written before openrft.runs existed
(job.json, the first events, three checkpoint records of a 16-step EuroVoc RFT job): it must load and be written
back unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from openrft import runs
from openrft.runs import Checkpoint, EventLog, MetricsData, ResolvedJob, RunFileError

OLD_RUN = Path(__file__).parent / "old_run"


def test_an_old_job_json_loads_typed_and_is_written_back_unchanged(tmp_path):
    raw = json.loads((OLD_RUN / "job.json").read_text())
    job = runs.load_job(OLD_RUN)
    assert (job.id, job.status, job.kind, job.seed) == (raw["id"], "succeeded", "reinforcement", 44)
    assert job.method.reinforcement is not None and job.method.reinforcement.grader == \
        raw["method"]["reinforcement"]["grader"]
    runs.save_job(tmp_path, job)
    assert json.loads((tmp_path / "job.json").read_text()) == raw
    job.status = "cancelled"  # a change is written, and only it
    runs.save_job(tmp_path, job)
    assert json.loads((tmp_path / "job.json").read_text()) == {**raw, "status": "cancelled"}


def test_old_checkpoint_records_and_metrics_events_load_typed_and_dump_unchanged():
    records = runs.list_checkpoints(OLD_RUN)
    assert [r.step_number for r in records] == [16, 12, 8]  # newest first, as OpenAI lists them
    for record in records:
        raw = json.loads((runs.checkpoint_dir(OLD_RUN, record.step_number) / "checkpoint.json").read_text())
        assert record.to_dict() == raw and isinstance(record.metrics.step, int)
    events = runs.read_events(OLD_RUN)
    metrics = runs.metrics_steps(events)
    assert [m.step for m in metrics] == list(range(9))
    raw_data = [e["data"] for e in events if e["type"] == "metrics"]
    assert [m.to_dict() for m in metrics] == raw_data
    assert metrics[0].train_reward is None and metrics[0].valid_reward == raw_data[0]["scores"]["valid_reward_mean"]
    assert metrics[4].valid_reward == raw_data[4]["full_valid_mean_reward"]
    assert metrics[1].timing is not None and metrics[1].timing.step.full_iteration == \
        raw_data[1]["timing"]["step"]["full_iteration"]


def test_a_resolved_job_answers_the_resolved_hyperparameters_and_the_validation_steps():
    job = ResolvedJob.load(OLD_RUN)
    assert (job.total_steps, job.batch_size, job.group_size, job.eval_interval, job.eval_samples) == (16, 4, 8, 4, 3)
    assert job.validation_steps == [0, 4, 8, 12, 16]
    assert job.reasoning_effort is None  # "default": no reasoning segment
    assert job.train_params(3, rank=1).seed == 44 * 100003 + 3 * 101 + 1 and job.train_params(3).n == 8
    assert job.valid_params(4).seed == 44 + 7919 * 4 and job.valid_params(4).n == 1
    assert job.fine_tuned_model == runs.load_job(OLD_RUN).fine_tuned_model
    assert job.checkpoint_model(12) == runs.list_checkpoints(OLD_RUN)[1].fine_tuned_model_checkpoint


def test_the_best_checkpoint_is_the_highest_validation_score_and_the_earliest_on_ties():
    def record(number: int, **metrics) -> Checkpoint:
        return Checkpoint.model_validate({"object": "fine_tuning.job.checkpoint", "id": f"c{number}", "created_at": 1,
                                          "fine_tuned_model_checkpoint": f"ft:x:ckpt-step-{number}",
                                          "fine_tuning_job_id": "ftjob-x", "step_number": number, "metrics": metrics})

    best = runs.best_checkpoint(runs.list_checkpoints(OLD_RUN))
    assert best is not None and best.step_number == 12  # 0.272 against 0.216 and 0.255
    tied = [record(4, full_valid_mean_reward=0.5), record(2, full_valid_mean_reward=0.5), record(6)]
    assert runs.best_checkpoint(tied).step_number == 2  # type: ignore[union-attr]
    by_loss = [record(1, full_valid_loss=0.9), record(2, full_valid_loss=0.4), record(3, full_valid_loss=0.7)]
    assert runs.best_checkpoint(by_loss).step_number == 2  # type: ignore[union-attr]  # supervised, dpo: lowest loss
    assert runs.best_checkpoint([record(1, step=1)]) is None  # a pause checkpoint, not validated


def test_a_line_torn_by_a_crash_is_skipped_then_cut_before_the_next_append_and_a_broken_line_is_named(tmp_path):
    log = EventLog(tmp_path)
    log.emit("first")
    with (tmp_path / "events.jsonl").open("a") as f:
        f.write('{"object": "fine_tuning.job.event", "mess')  # the process died inside this write
    assert [e["message"] for e in runs.read_events(tmp_path)] == ["first"]
    log.emit("after the restart")
    assert [e["message"] for e in runs.read_events(tmp_path)] == ["first", "after the restart"]
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    (tmp_path / "events.jsonl").write_text(lines[0][:20] + "\n" + lines[1] + "\n")
    with pytest.raises(RunFileError, match=r"events\.jsonl: line 1: not valid JSON"):
        runs.read_events(tmp_path)


def test_a_job_json_that_is_not_a_job_is_refused_naming_the_file_and_the_field(tmp_path):
    raw = json.loads((OLD_RUN / "job.json").read_text())
    del raw["seed"]
    (tmp_path / "job.json").write_text(json.dumps(raw))
    with pytest.raises(RunFileError, match=r"job\.json: not a fine-tuning job: seed: Field required"):
        runs.load_job(tmp_path)
    with pytest.raises(FileNotFoundError, match="no job.json"):
        runs.load_job(tmp_path / "elsewhere")


def test_a_resolved_job_takes_the_seeded_training_subset_and_whole_validation_groups(tmp_path):
    def row(i: int, group: str, labels: list[str]) -> dict:
        return {"messages": [{"role": "user", "content": f"text {i}"}], "act": group, "labels": labels}

    train = [row(i, f"a{i}", ["x"] if i % 2 else ["y"]) for i in range(10)]
    valid = [row(i, f"v{i // 3}", ["z"]) for i in range(9)]  # three groups of three
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in valid))
    raw = json.loads((OLD_RUN / "job.json").read_text())
    raw["openrft"].update(training_path=str(tmp_path / "train.jsonl"), validation_path=str(tmp_path / "valid.jsonl"),
                          max_train_rows=4, max_valid_rows=2, group_key="act", labels=None)
    (tmp_path / "job.json").write_text(json.dumps(raw))
    job = ResolvedJob.load(tmp_path)
    from openrft.data.order import subset

    assert job.train_rows == subset(train, 4, 44) and len(job.train_rows) == 4
    assert [line for line, _ in job.numbered_train_rows] == [train.index(r) + 1 for r in job.train_rows]
    assert len(job.valid_rows) == 2 and len({r["act"] for r in job.valid_rows}) == 2  # two groups, one row each
    assert job.labels == sorted({label for r in job.train_rows + job.valid_rows for label in r["labels"]})
    assert len(job.all_train_rows) == 10 and sorted(job.epoch_order(1)) == [0, 1, 2, 3]


def test_find_fine_tuned_finds_the_final_model_and_each_checkpoint_by_name(tmp_path):
    run = shutil.copytree(OLD_RUN, tmp_path / "runs" / "ftjob-old")
    (run / "checkpoints" / "final").mkdir()
    job = runs.load_job(run)
    assert job.fine_tuned_model is not None
    assert runs.find_fine_tuned(job.fine_tuned_model, tmp_path / "runs") == run / "checkpoints" / "final"
    name = runs.list_checkpoints(run)[0].fine_tuned_model_checkpoint
    assert runs.find_fine_tuned(name, tmp_path / "runs") == run / "checkpoints" / "step-16"
    from openrft.models import ModelError

    with pytest.raises(ModelError, match="not found"):
        runs.find_fine_tuned(name + "x", tmp_path / "runs")


def test_metrics_data_keeps_the_flat_keys_of_supervised_steps():
    data = MetricsData.model_validate({"step": 2, "total_steps": 4, "train_loss": 1.5, "full_valid_loss": 1.25,
                                       "timing": {"training": 0.1, "eval": 0.2, "full_iteration": 0.3}})
    assert data.flat("train_loss") == 1.5 and data.flat("full_valid_loss") == 1.25 and data.valid_reward is None
    assert data.to_dict()["timing"] == {"training": 0.1, "eval": 0.2, "full_iteration": 0.3}
