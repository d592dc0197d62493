"""openrft.runs: the typed run directory. `old_run/` is a real run directory written before openrft.runs existed
(job.json, the first events, three checkpoint records of a 16-step EuroVoc RFT job, and its step-16 validation run:
run.json and three of its output items, their prompts cut short and their act replaced by a made-up row, so
that no data of ../shared is copied here): it must load and be written back unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from openrft import runs
from openrft.runs import Checkpoint, EvalRun, EventLog, MetricsData, OutputItem, ResolvedJob, RunFileError

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
    from openrft.data.splits import group_subset

    assert job.train_rows == group_subset(train, 4, 44, "act", any_member=True) and len(job.train_rows) == 4
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


def test_an_old_eval_run_and_its_output_items_load_typed_and_are_written_back_unchanged(tmp_path):
    from openrft.runs.files import write_json, write_jsonl

    step = OLD_RUN / "evals" / "step-16"
    raw_run = json.loads((step / "run.json").read_text())
    raw_items = [json.loads(line) for line in (step / "output_items.jsonl").read_text().splitlines()]
    run, items = runs.read_eval_run(step), runs.read_output_items(step)
    assert (run.status, run.result_counts.total, run.per_model_usage[0].run_model_name) == ("completed", 72, "default")
    assert [item.datasource_item_id for item in items] == [0, 0, 0] and [i.sample.run for i in items] == [0, 1, 2]
    assert items[0].reward == raw_items[0]["results"][0]["score"] and items[0].sample.error is None
    assert items[0].results[0].sub_rewards == raw_items[0]["results"][0]["sub_rewards"]
    assert run.to_dict() == raw_run and [item.to_dict() for item in items] == raw_items
    # keys this openrft does not know (a newer one's, or a grader's) are kept, and an int stays an int
    raw_run["future"] = {"kept": True}
    raw_items[0]["sample"]["logprobs"] = [-0.5]
    raw_items[0]["results"][0]["score"] = 1
    raw_items[0]["results"][0]["future"] = "kept"
    write_json(tmp_path / "run.json", raw_run)
    write_jsonl(tmp_path / "output_items.jsonl", raw_items)
    write_json(tmp_path / "run.json", runs.read_eval_run(tmp_path).to_dict())
    write_jsonl(tmp_path / "output_items.jsonl", [item.to_dict() for item in runs.read_output_items(tmp_path)])
    assert json.loads((tmp_path / "run.json").read_text()) == raw_run
    written = [json.loads(line) for line in (tmp_path / "output_items.jsonl").read_text().splitlines()]
    assert written == raw_items and isinstance(written[0]["results"][0]["score"], int)


def test_an_eval_run_s_files_round_trip_through_the_typed_models_with_no_new_keys(tmp_path):
    """What `run_eval` writes is what it built: the typed run and items, key for key (no null it did not write)."""
    from openrft.engines import SamplingParams
    from openrft.engines.given import GivenSamples, given_sample
    from openrft.evals import load_eval, run_eval

    rows = [{"messages": [{"role": "user", "content": f"Is {i} even?"}], "answer": "yes" if i % 2 == 0 else "no"}
            for i in range(3)]
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    given = [given_sample(0, {"output_text": '{"answer": "yes"}'}), given_sample(1, {"output_text": "not json"}),
             given_sample(2, {"output_text": "", "output_tools": [call]})]
    grader = {"type": "string_check", "name": "exact", "input": "{{sample.output_json.answer}}",
              "reference": "{{item.answer}}", "operation": "eq"}
    result = run_eval(rows, engine=GivenSamples(given), grader=grader, out_dir=tmp_path, progress=False, plots=False,
                      params=SamplingParams(temperature=1, seed=None, response_format={"type": "json_object"}))
    raw_run = json.loads((tmp_path / "run.json").read_text())
    raw_items = [json.loads(line) for line in (tmp_path / "output_items.jsonl").read_text().splitlines()]
    assert raw_run == result.run.to_dict() and EvalRun.model_validate(raw_run).to_dict() == raw_run
    assert raw_items == [item.to_dict() for item in result.output_items]
    assert [OutputItem.model_validate(raw).to_dict() for raw in raw_items] == raw_items
    again = load_eval(tmp_path)
    assert again.run == result.run and again.output_items == result.output_items
    assert set(raw_run) == {"object", "id", "eval_id", "status", "model", "name", "created_at", "report_url",
                            "result_counts", "per_model_usage", "per_testing_criteria_results", "data_source",
                            "metadata", "error"}
    assert raw_run["error"] is None and raw_run["data_source"]["source"] == {"type": "file_content", "count": 3}
    assert {key for raw in raw_items for key in raw} == {
        "object", "id", "run_id", "eval_id", "created_at", "status", "datasource_item_id", "datasource_item",
        "results", "sample"}
    assert {key for raw in raw_items for key in raw["sample"]} == {
        "input", "output", "output_json", "reasoning", "finish_reason", "model", "usage", "error", "temperature",
        "max_completion_tokens", "top_p", "seed", "latency_s", "run"}
    assert [raw["status"] for raw in raw_items] == ["pass", "fail", "fail"]
    assert raw_items[0]["sample"]["temperature"] == 1 and isinstance(raw_items[0]["sample"]["temperature"], int)
    assert raw_items[2]["sample"]["output"] == [{"role": "assistant", "content": "", "tool_calls": [call]}]
    assert raw_items[0]["results"][0] == {"name": "exact", "type": "string_check", "score": 1.0, "passed": True,
                                          "sub_rewards": {}, "error_kind": None, "errors": {}}


def test_an_output_item_that_is_not_one_is_refused_naming_the_file_the_line_and_the_field(tmp_path):
    step = OLD_RUN / "evals" / "step-16"
    lines = (step / "output_items.jsonl").read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["sample"]["usage"]
    (tmp_path / "output_items.jsonl").write_text(lines[0] + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(RunFileError, match=r"output_items\.jsonl: line 2: not an output item: sample\.usage: Field"):
        runs.read_output_items(tmp_path)
    assert runs.read_output_items(tmp_path / "elsewhere") == []
    (tmp_path / "run.json").write_text(json.dumps({**json.loads((step / "run.json").read_text()), "status": None}))
    with pytest.raises(RunFileError, match=r"run\.json: not an eval run: status: Input should be a valid string"):
        runs.read_eval_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="no run.json"):
        runs.read_eval_run(tmp_path / "elsewhere")
