"""The workflow demo's orchestration: which models each stage trains and scores, on which rows, in which order;
every stage on the same held-out rows apart from training and validation; the prompt chosen on validation rows.
Training and evaluation are stubs (the jobs and eval runs themselves are tested in tests/training, tests/evals);
the bodies the stubs receive are real job bodies, checked by the job spec parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

LABELS = ["agriculture", "trade", "energy"]


def tiny_task():
    """A labelled task with two prompt variants and two rows (languages) per document."""
    from openrft.tasks.base import Task, json_labels_format

    def loader(split, prompt="short", **_):
        docs = [f"t{i}" for i in range(6)] if split == "train" else [f"v{i}" for i in range(60)]
        return [{"messages": [{"role": "user", "content": f"[{prompt}] classify document {doc} ({lang})"}],
                 "labels": [LABELS[i % 3]] + ([LABELS[(i + 1) % 3]] if i % 2 else []),
                 "doc": doc, "id": f"{doc}_{lang}"}
                for i, doc in enumerate(docs) for lang in ("en", "fr")]

    return Task(name="tiny", description="tiny", loader=loader, grader_name="multilabel_f1", labels=LABELS,
                response_format=json_labels_format("tiny", LABELS, min_items=1, max_items=3), label_key="labels",
                group_key="doc", options={"prompt": "short"}, prompts=("short", "described"))


# Per-item reward of each (model kind, prompt): described is better on validation rows but worse on held-out
# rows, so a choice made on the held-out rows would pick short; SFT→RFT loses to the base model.
LEVELS = {("base", "short"): 0.20, ("base", "described"): 0.10, ("sft", "described"): 0.30,
          ("rft", "described"): 0.45, ("sft+rft", "described"): 0.05, ("rft-long", "described"): 0.35}
VALIDATION_LEVELS = {"short": 0.2, "described": 0.4}


def fake_result(rows, level):
    from openrft.evals import EvalResult

    prf = lambda f1: {"precision": f1, "recall": f1, "f1": f1}  # noqa: E731
    items = [{"index": i, "id": r["id"], "mean": level + 0.02 * (i % 3), "group": f"doc={r['doc']}"}
             for i, r in enumerate(rows)]
    mean = sum(it["mean"] for it in items) / len(items)
    summary = {"reward": {"mean": mean, "run_to_run_std": 0.0}, "items": items,
               # answers that read the item above 0.3 (a gap of level − 0.3), the others blind to it
               "classification": {"micro": prf(level + 0.1), "macro": prf(level),
                                  "other_items": {"diff": max(0.0, level - 0.3),
                                                  "ci95": [max(0.0, level - 0.3) - 0.02, max(0.0, level - 0.3) + 0.02]}},
               "tokens": {"truncated_share": 0.0}, "errors": {"sample_parse_error_rate": 0.0},
               "baselines": {"most_frequent": {"reward": {"mean": 0.5}, "classification": {"micro": prf(0.55),
                                                                                             "macro": prf(0.15)}},
                             "random": {"reward": {"mean": 0.15}, "classification": {"micro": prf(0.16),
                                                                                       "macro": prf(0.13)}},
                             "text_classifier": {"reward": {"mean": 0.52}, "item_means": [0.52] * len(items),
                                                 "classification": {"micro": prf(0.5),
                                                                                                "macro": prf(0.3)}}}}
    return EvalResult(run={}, summary=summary)


@pytest.fixture()
def stubbed(monkeypatch, home):
    """run_workflow with stub training and evaluation; records every job body and every eval."""
    import openrft.workflow as workflow
    from openrft.spec import parse_job

    calls = {"bodies": [], "evals": []}

    def train(body, console):
        parse_job(json.loads(json.dumps(body)))  # a valid job body, as `openrft train` would take it
        calls["bodies"].append(body)
        run_dir = Path(body["openrft"]["output_dir"])
        (run_dir / "checkpoints" / "final").mkdir(parents=True)
        return run_dir, {"status": "succeeded"}

    def evaluate(plan, model, rows, out_dir, name, text_baseline=False):
        prompt = rows[0]["messages"][0]["content"][1:].split("]")[0]
        kind = "base" if model == "default" else Path(model).parents[1].name
        calls["evals"].append({"model": model, "kind": kind, "prompt": prompt, "ids": [r["id"] for r in rows],
                               "out_dir": out_dir, "text_baseline": text_baseline})
        if "prompt-choice" in str(out_dir):
            return fake_result(rows, VALIDATION_LEVELS[prompt])
        return fake_result(rows, LEVELS[(kind, prompt)])

    monkeypatch.setattr(workflow, "train", train)
    monkeypatch.setattr(workflow, "evaluate", evaluate)
    return calls


def test_every_stage_is_scored_on_the_same_held_out_rows_apart_from_training_and_validation(stubbed, tmp_path):
    from openrft.data.splits import group_subset, groups_in
    from openrft.workflow import DRAW_SEED, run_workflow

    task = tiny_task()
    console = Console(record=True, width=250)
    summary = run_workflow(seeds=[3, 4], output_dir=tmp_path / "wf", held_out=6, task=task, console=console)

    # stage order: the shared base stages once, then SFT, RFT, SFT→RFT for each seed
    assert [(s["stage"], s["seed"]) for s in summary["scores"]] == [
        ("base", None), ("base+prompt", None), ("sft", 3), ("rft", 3), ("sft+rft", 3),
        ("sft", 4), ("rft", 4), ("sft+rft", 4)]
    # the prompt was chosen on the jobs' validation rows (described), although short wins on held-out
    choice = [e for e in stubbed["evals"] if "prompt-choice" in str(e["out_dir"])]
    assert [e["prompt"] for e in choice] == ["short", "described"]
    validation = group_subset(task.rows("validation"), 24, DRAW_SEED, "doc")
    assert all(e["ids"] == [r["id"] for r in validation] for e in choice)
    assert summary["prompt_choice"]["chosen"] == "described"
    assert summary["prompt_choice"]["validation_reward"]["described"] > summary["prompt_choice"]["validation_reward"][
        "short"]
    # the difference to the default prompt, paired on the same validation rows, with its CI by group
    versus = summary["prompt_choice"]["versus_default"]
    rewards = summary["prompt_choice"]["validation_reward"]
    assert list(versus) == ["described"] and versus["described"]["n_items"] == len(validation)
    assert versus["described"]["diff"] == pytest.approx(rewards["described"] - rewards["short"])
    assert versus["described"]["ci95"] == pytest.approx([0.2, 0.2])  # the stub's rows differ by 0.2 each
    assert "described − short +0.200 [+0.200, +0.200]" in console.export_text(clear=False)

    held = [e for e in stubbed["evals"] if "prompt-choice" not in str(e["out_dir"])]
    assert [(e["kind"], e["prompt"]) for e in held] == [("base", "short"), ("base", "described")] + [
        ("sft", "described"), ("rft", "described"), ("sft+rft", "described")] * 2
    ids = held[0]["ids"]
    assert all(e["ids"] == ids for e in held) and ids == summary["held_out"]["ids"]
    held_docs = {i.split("_")[0] for i in ids}
    assert len(ids) == 6 and len(held_docs) == 6  # one record of each of 6 documents
    train_docs = {r["doc"] for r in task.rows("train")}
    assert not held_docs & train_docs and not {f"doc={d}" for d in held_docs} & groups_in(validation, "doc")
    assert summary["held_out"]["records"] == "6 records of 6 groups (doc)"

    # the job bodies: SFT on the chosen prompt's reference answers, RFT from the base model, SFT→RFT from SFT's
    # final checkpoint; every job on the chosen prompt with the quick budget and its seed
    kinds = [(b["method"]["type"], b["seed"]) for b in stubbed["bodies"]]
    assert kinds == [("supervised", 3), ("reinforcement", 3), ("reinforcement", 3)] * 1 + [
        ("supervised", 4), ("reinforcement", 4), ("reinforcement", 4)]
    sft, rft, sft_rft = stubbed["bodies"][:3]
    assert sft["training_file"].endswith("described-supervised/train.jsonl")
    first = json.loads(Path(sft["training_file"]).read_text().splitlines()[0])
    assert first["messages"][-1]["role"] == "assistant" and json.loads(first["messages"][-1]["content"])["labels"]
    assert rft["training_file"].endswith("data/described/train.jsonl") and rft["model"] == "default"
    assert sft_rft["model"] == str(tmp_path / "wf" / "seed-3" / "sft" / "checkpoints" / "final")
    assert sft["method"]["supervised"]["hyperparameters"]["n_epochs"] == 3 and "max_steps" not in sft["openrft"]
    assert sft["openrft"]["max_train_rows"] == 96 and rft["openrft"]["max_steps"] == 8
    assert rft["openrft"]["validate_at_start"] is False
    assert rft["method"]["reinforcement"]["hyperparameters"]["eval_interval"] == 8

    # figures: gains paired against the base stage, the stage that loses is reported, the target is not met
    by = {(s["stage"], s["seed"]): s for s in summary["scores"]}
    assert by[("rft", 3)]["gain"] == pytest.approx(0.25) and by[("rft", 3)]["gain_ci_above_zero"]
    assert by[("sft+rft", 4)]["gain"] == pytest.approx(-0.15) and by[("sft+rft", 4)]["gain_ci_below_zero"]
    assert by[("base+prompt", None)]["gain"] == pytest.approx(-0.10)
    v = summary["verdict"]
    assert v["best_stage"] == "rft" and v["best_trained_stage"] == "rft"
    assert "sft+rft" in v["loses_to_base"] and "base+prompt" in v["loses_to_base"]
    assert not v["target_met"] and v["target"]["beats_base_beyond_ci"] is False
    assert v["target"]["micro_f1_minus_most_frequent"] == pytest.approx(0.15 - 0.55)
    assert summary["stages"]["rft"]["n"] == 2 and summary["stages"]["rft"]["reward"]["std"] == pytest.approx(0.0)
    # whether the answers read the item (own − other items), and the text classifier beside the best stage
    assert by[("rft", 3)]["own_vs_other_items"] == pytest.approx(0.15) and summary["stages"]["rft"][
        "own_ci_above_other"] == 2 and summary["stages"]["sft"]["own_ci_above_other"] == 0
    reads = next(t for t in v["text"] if t.startswith("answers that fit their own item"))
    assert "RFT +0.150, 2/2 seeds" in reads and "base, default prompt +0.000, 0/1 seed;" in reads
    assert "SFT +0.000, 0/2 seeds" in reads and "no evidence that a stage's answers depend on the item" in reads
    text = next(t for t in v["text"] if t.startswith("a text classifier"))
    assert "reward 0.520" in text and "macro-F1 0.300" in text  # SFT→RFT (0.05-0.09 per item) − 0.52, each seed
    assert "SFT → RFT − it (paired, per seed): -0.450 [" in text and "below 0 for 2/2" in text
    assert by[("rft", 3)]["reward_vs_text_classifier"] == pytest.approx(0.47 - 0.52)
    assert v["target"]["final_reward_minus_text_classifier"] == pytest.approx(0.05 + 0.02 - 0.52)
    # the text classifier is fitted in the base stage's eval only (the one that scores the default prompt's rows)
    assert [e["kind"] for e in stubbed["evals"] if e["text_baseline"]] == ["base"]

    on_disk = json.loads((tmp_path / "wf" / "workflow.json").read_text())
    assert on_disk["verdict"]["text"] == v["text"] and on_disk["complete"] is True
    assert (tmp_path / "wf" / "workflow.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = console.export_text()
    assert "SFT → RFT" in text and "baseline: most-frequent" in text and "target" in text and "NOT met" in text


def test_the_jobs_validation_and_held_out_acts_are_the_same_whatever_the_seeds(stubbed, tmp_path):
    """The validation file is split once (DRAW_SEED): every job of every seed validates on job_validation.jsonl
    (the same ids for SFT's and RFT's rows), and by default the held-out set is one record of every group left,
    the same for `--seeds 1` and `--seeds 2` from another seed."""
    from openrft.data import load_rows
    from openrft.data.splits import groups_in
    from openrft.workflow import run_workflow

    one = run_workflow(seeds=[3], output_dir=tmp_path / "one", task=tiny_task(), console=Console(quiet=True))
    bodies = list(stubbed["bodies"])
    two = run_workflow(seeds=[7, 8], output_dir=tmp_path / "two", task=tiny_task(), console=Console(quiet=True))
    assert one["held_out"]["ids"] == two["held_out"]["ids"]
    validation = [[r["id"] for r in load_rows(b["validation_file"], method=b["method"]["type"])]
                  for b in stubbed["bodies"]]
    assert all(Path(b["validation_file"]).name == "job_validation.jsonl" for b in stubbed["bodies"])
    assert len(validation) == 9 and all(ids == validation[0] for ids in validation) and len(validation[0]) == 24
    validated = {i.split("_")[0] for i in validation[0]}
    held = {i.split("_")[0] for i in one["held_out"]["ids"]}
    assert len(held) == len(one["held_out"]["ids"]) == 60 - len(validated)  # every document left, one record each
    assert not held & validated and one["held_out"]["records"] == f"{len(held)} records of {len(held)} groups (doc)"
    sft = load_rows(bodies[0]["validation_file"], method="supervised")
    assert sft[0]["messages"][-1]["role"] == "assistant" and groups_in(sft, "doc") == {f"doc={d}" for d in validated}


def test_the_full_budget_validates_on_24_rows_and_holds_out_the_rest(home, tmp_path):
    """job_full.yaml validates on the whole validation file; in the workflow its jobs validate on 24 rows
    (VALIDATION_ROWS) so that held-out acts are left."""
    from openrft.workflow import BUDGETS, held_out_set, job_validation, make_plan

    plan = make_plan(tiny_task(), tmp_path / "wf", BUDGETS["full"], [5], None)
    assert "max_valid_rows" not in plan.rft_body["openrft"] and len(job_validation(plan, "short")) == 24
    assert held_out_set(plan).records == "36 records of 36 groups (doc)"


def test_a_longer_rft_stage_gets_every_step_it_asks_for_past_one_epoch(home, tmp_path):
    """The job stops with its last epoch whatever max_steps says: `rft_body(steps=…)` gives it the epochs it needs."""
    from openrft.spec import parse_job
    from openrft.training import hyperparams
    from openrft.workflow import BUDGETS, make_plan, rft_body

    plan = make_plan(tiny_task(), tmp_path / "wf", BUDGETS["quick"], [5], None)
    assert plan.rft_steps_per_epoch == 3  # 12 training rows (6 documents × 2) in steps of 4
    for steps, epochs in ((2, 1), (3, 1), (8, 3), (44, 15)):
        body = rft_body(plan, "short", 5, tmp_path / "o", plan.base_model, steps=steps)
        resolved = hyperparams.resolve(parse_job(body), 12)
        assert (resolved["n_epochs"], resolved["resolved"]["total_steps"]) == (epochs, steps)
        assert resolved["eval_interval"] == steps  # validated once, at the end


def test_every_stage_is_scored_with_the_rft_job_s_settings(home, tmp_path):
    """The plan's eval settings are the RFT job's (examples/eurovoc/job.yaml on the task): its sampling parameters
    (one sample per run, seeded with DRAW_SEED + 1 whatever the seeds), runs per item, grader, labels and label
    field."""
    from openrft.engines.base import SamplingParams
    from openrft.workflow import BUDGETS, make_plan

    task = tiny_task()
    plan = make_plan(task, tmp_path / "wf", BUDGETS["quick"], [5, 6], None)
    assert plan.params == SamplingParams(n=1, temperature=1.0, top_p=1.0, max_tokens=48, seed=43,
                                         response_format=task.response_format, reasoning_effort=None)
    assert (plan.runs, plan.grader, plan.labels, plan.label_key, plan.group_key) == \
        (3, task.grader, LABELS, "labels", "doc")
    assert len(plan.train_rows) == 12 and plan.base_model == "default"


def test_a_failed_sft_stage_skips_sft_rft_and_is_reported(stubbed, tmp_path, monkeypatch):
    import openrft.workflow as workflow

    real = workflow.train

    def train(body, console):
        if body["method"]["type"] == "supervised":
            raise RuntimeError("out of memory")
        return real(body, console)

    monkeypatch.setattr(workflow, "train", train)
    summary = workflow.run_workflow(seeds=[3], output_dir=tmp_path / "wf", held_out=4, task=tiny_task(),
                                    console=Console(record=True, width=200))
    status = {s["stage"]: (s["status"], s["error"]) for s in summary["scores"]}
    assert status["sft"] == ("failed", "RuntimeError: out of memory")
    assert status["sft+rft"] == ("skipped", "its SFT stage failed") and status["rft"][0] == "succeeded"
    assert summary["verdict"]["failed"] == {"sft": [3], "sft+rft": [3]}
    assert not summary["verdict"]["target_met"] and "NOT met" in next(t for t in summary["verdict"]["text"] if t.startswith("target"))


def test_equal_cpu_adds_rft_alone_for_the_longer_budget_paired_against_sft_rft(stubbed, tmp_path):
    from openrft.workflow import run_workflow

    console = Console(record=True, width=250)
    summary = run_workflow(seeds=[3, 4], output_dir=tmp_path / "wf", held_out=6, task=tiny_task(), equal_cpu=True,
                           console=console)
    assert [(s["stage"], s["seed"]) for s in summary["scores"]][2:] == [
        ("sft", 3), ("rft", 3), ("sft+rft", 3), ("rft-long", 3), ("sft", 4), ("rft", 4), ("sft+rft", 4),
        ("rft-long", 4)]
    rft, long = stubbed["bodies"][1], stubbed["bodies"][3]
    assert long["model"] == "default" and long["training_file"] == rft["training_file"] and long["seed"] == 3
    assert long["openrft"]["max_steps"] == 24 and rft["openrft"]["max_steps"] == 8  # one epoch of 96 acts
    assert long["method"]["reinforcement"]["hyperparameters"]["eval_interval"] == 24  # validated once, at the end
    assert long["openrft"]["output_dir"] == str(tmp_path / "wf" / "seed-3" / "rft-long")
    held = [e for e in stubbed["evals"] if "prompt-choice" not in str(e["out_dir"])]
    assert all(e["ids"] == summary["held_out"]["ids"] for e in held)

    # SFT→RFT (0.05) against the longer RFT (0.35) on the same rows, per seed, beside what each cost
    equal = summary["equal_cpu"]
    assert [e["seed"] for e in equal] == [3, 4]
    assert all(e["rft_long_steps"] is None for e in equal)  # the stub jobs write no metrics events
    assert "RFT, longer: 24 steps, the budget's (RFT's cost per step could not be measured)" in console.export_text(clear=False)
    assert all(e["diff"] == pytest.approx(-0.30) and e["ci95"][1] < 0 for e in equal)
    by = {(s["stage"], s["seed"]): s for s in summary["scores"]}
    assert equal[0]["final_cpu_s"] == pytest.approx(by[("sft", 3)]["train_cpu_s"] + by[("sft+rft", 3)]["train_cpu_s"])
    assert equal[0]["rft_long_cpu_s"] == pytest.approx(by[("rft-long", 3)]["train_cpu_s"])
    line = next(t for t in summary["verdict"]["text"] if t.startswith("at about equal CPU time"))
    assert "SFT → RFT − RFT, longer" in line and "CI above 0 for 0/2 seeds, below 0 for 2/2" in line
    assert summary["stages"]["rft-long"]["n"] == 2 and "RFT, longer" in console.export_text()


def test_sft_epochs_override_the_budgets_and_are_recorded(stubbed, tmp_path):
    from openrft.workflow import run_workflow

    summary = run_workflow(seeds=[3], output_dir=tmp_path / "wf", held_out=6, task=tiny_task(), sft_epochs=1)
    sft = stubbed["bodies"][0]
    assert sft["method"]["type"] == "supervised" and sft["method"]["supervised"]["hyperparameters"]["n_epochs"] == 1
    assert summary["budget"]["sft_epochs"] == 1 and summary["budget"]["name"] == "quick"
    assert json.loads((tmp_path / "wf" / "workflow.json").read_text())["budget"]["sft_epochs"] == 1
    with pytest.raises(ValueError, match="--sft-epochs: 0"):
        run_workflow(seeds=[3], output_dir=tmp_path / "wf2", task=tiny_task(), sft_epochs=0)


def test_equal_cpu_with_a_budget_that_has_no_fallback_skips_the_stage_it_cannot_size(stubbed, tmp_path):
    from openrft.workflow import run_workflow

    console = Console(record=True, width=250)
    summary = run_workflow(budget="long", seeds=[1], output_dir=tmp_path / "wf", held_out=6, task=tiny_task(),
                           equal_cpu=True, console=console)
    long = next(s for s in summary["scores"] if s["stage"] == "rft-long")
    assert long["status"] == "skipped" and "could not be measured" in long["error"]
    assert [b["method"]["type"] for b in stubbed["bodies"]] == ["supervised", "reinforcement", "reinforcement"]
    assert "RFT, longer: skipped" in console.export_text() and summary["equal_cpu"] == []


def test_an_output_folder_in_use_is_refused(tmp_path):
    from openrft.workflow import run_workflow

    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "workflow.json").write_text("{}")
    with pytest.raises(FileExistsError, match="not empty"):
        run_workflow(seeds=[1], output_dir=tmp_path / "wf", task=tiny_task())


def test_the_demo_command_runs_the_workflow_with_its_budget_and_seeds(tmp_path, monkeypatch):
    import openrft.demo as demo
    import openrft.workflow as workflow
    from openrft.cli import app

    got: dict = {}
    monkeypatch.setattr(workflow, "run_workflow", lambda **kw: got.update(kw) or {"verdict": {"failed": {}}})
    out = CliRunner().invoke(app, ["demo", "--seeds", "3", "--seed", "5", "--out", str(tmp_path / "o"),
                                   "--max-steps", "4"])
    assert out.exit_code == 0, out.output
    assert got == {"budget": "quick", "seeds": [5, 6, 7], "output_dir": tmp_path / "o", "held_out": None,
                   "max_steps": 4, "equal_cpu": False, "sft_epochs": None}
    got.clear()
    assert CliRunner().invoke(app, ["demo", "--equal-cpu"]).exit_code == 0 and got["equal_cpu"] is True
    assert CliRunner().invoke(app, ["demo", "--sft-epochs", "2"]).exit_code == 0 and got["sft_epochs"] == 2
    assert CliRunner().invoke(app, ["demo", "--sft-epochs", "0"]).exit_code == 2
    assert CliRunner().invoke(app, ["demo", "--sft-epochs", "2", "--rft-only"]).exit_code == 2
    out = CliRunner().invoke(app, ["demo", "--equal-cpu", "--rft-only"])  # the stage is the workflow's
    assert out.exit_code == 2 and "--equal-cpu" in out.output
    got.clear()
    assert CliRunner().invoke(app, ["demo", "--equal-cpu", "--long"]).exit_code == 0
    assert got["budget"] == "long" and got["equal_cpu"] is True
    got.clear()
    assert CliRunner().invoke(app, ["demo", "--long"]).exit_code == 0
    assert got["budget"] == "long" and got["seeds"] == [42]
    assert CliRunner().invoke(app, ["demo", "--held-out", "0"]).exit_code == 2  # the workflow needs held-out acts
    monkeypatch.setattr(workflow, "run_workflow", lambda **kw: {"verdict": {"failed": {"sft": [42]}}})
    assert CliRunner().invoke(app, ["demo"]).exit_code == 1
    monkeypatch.setattr(demo, "run_demo", lambda **kw: got.update(single=kw) or {"status": "succeeded"})
    assert CliRunner().invoke(app, ["demo", "--rft-only", "--seed", "9"]).exit_code == 0
    assert got["single"]["seed"] == 9 and got["single"]["held_out"] == 48  # the RFT-only demo's default


def test_equal_cpu_steps_buy_sft_and_sft_rft_cpu_time_at_rft_measured_cost_per_step(tmp_path):
    from openrft.workflow import Clock, StageRun, equal_cpu_steps

    def stage(name, cpu, wall, run_dir=None, status="succeeded"):
        return StageRun(name, 1, "short", "m", status=status, run_dir=run_dir, train=Clock(wall=wall, cpu=cpu))

    rft_dir = tmp_path / "rft"
    rft_dir.mkdir()
    # 8 steps of 5 s wall each (sampling 2 + training 3; the final validation's eval time is not a step's cost)
    events = [{"type": "metrics", "data": {"step": i, "total_steps": 8, "timing": {"step": {
        "sampling": 2.0, "training": 3.0, "eval": 20.0 if i == 8 else 0.0}}}} for i in range(1, 9)]
    (rft_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    # the stage: 80 s wall, 160 s CPU → 10 s CPU a step, 80 s CPU paid once (loading, validation)
    rft = stage("rft", cpu=160.0, wall=80.0, run_dir=rft_dir)
    sft, sft_rft = stage("sft", 300.0, 200.0, tmp_path), stage("sft+rft", 200.0, 100.0, tmp_path)
    assert equal_cpu_steps(sft, rft, sft_rft) == 42  # (300 + 200 − 80) / 10
    # never fewer steps than the RFT stage itself; nothing measured when a stage failed or left no timings
    assert equal_cpu_steps(stage("sft", 10.0, 10.0, tmp_path), rft, stage("sft+rft", 10.0, 10.0, tmp_path)) == 8
    failed = stage("sft", 300.0, 200.0, None, status="failed")
    assert equal_cpu_steps(failed, rft, sft_rft) is None
    assert equal_cpu_steps(sft, stage("rft", 160.0, 80.0, tmp_path / "none"), sft_rft) is None


def test_a_tie_on_validation_keeps_the_default_prompt_and_reuses_its_eval(stubbed, tmp_path, monkeypatch):
    from openrft.workflow import run_workflow

    monkeypatch.setitem(VALIDATION_LEVELS, "described", VALIDATION_LEVELS["short"])
    summary = run_workflow(seeds=[3], output_dir=tmp_path / "wf", held_out=6, task=tiny_task(),
                           console=Console(quiet=True))
    assert summary["prompt_choice"]["chosen"] == "short"
    by = {s["stage"]: s for s in summary["scores"]}
    assert by["base+prompt"]["prompt"] == "short" and by["sft"]["prompt"] == "short"
    held = [e for e in stubbed["evals"] if "prompt-choice" not in str(e["out_dir"])]
    assert [(e["kind"], e["prompt"]) for e in held][0] == ("base", "short")  # one base eval, shared by stages 1-2
    assert [e["kind"] for e in held].count("base") == 1
    assert stubbed["bodies"][0]["training_file"].endswith("short-supervised/train.jsonl")
