"""Reading run directories: what the dashboard shows is what the trainer and the evals wrote."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from rundirs import write_job_run

from openrft.dashboard import rundata


def events_of(path):
    return [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()
            if line.strip() and line.endswith("}") and '"ftevent-x"' not in line]


def test_discover_finds_jobs_eval_runs_and_validation_runs(runs_root, tmp_path):
    refs = rundata.discover([runs_root / "runs", runs_root / "evals"])
    assert {k: r.kind for k, r in refs.items() if not r.parent} == {
        "ftjob-done": "job", "ftjob-live": "job", "base": "eval", "tuned": "eval"}
    assert [k for k, r in refs.items() if r.parent == "ftjob-done"] == [
        "ftjob-done/evals/step-0", "ftjob-done/evals/step-2", "ftjob-done/evals/step-4", "ftjob-done/evals/step-6"]
    # A run directory given directly is found too, and a half-written folder is not a step.
    job = shutil.copytree(runs_root / "runs" / "ftjob-done", tmp_path / "ftjob-done")
    (job / "evals" / "step-8.partial").mkdir()
    assert set(rundata.discover([job])) == {"ftjob-done", "ftjob-done/evals/step-0", "ftjob-done/evals/step-2",
                                            "ftjob-done/evals/step-4", "ftjob-done/evals/step-6"}
    # `openrft eval -m A -m B` writes one folder per model inside the run's folder.
    shutil.copytree(runs_root / "evals" / "base", tmp_path / "evals" / "20250101-120000" / "default")
    shutil.copytree(runs_root / "evals" / "tuned", tmp_path / "evals" / "20250101-120000" / "ft-x")
    assert set(rundata.discover([tmp_path / "evals"])) == {"20250101-120000/default", "20250101-120000/ft-x"}


def test_job_view_series_follow_the_metrics_events(runs_root):
    ref = rundata.discover([runs_root / "runs"])["ftjob-done"]
    view = rundata.job_view(ref)
    metrics = [e["data"] for e in events_of(ref.path) if e.get("type") == "metrics"]
    s = view["series"]
    assert s["step"] == [d["step"] for d in metrics]
    assert s["reward"]["train"] == [d["scores"].get("train_reward_mean") for d in metrics]
    assert s["step"][0] == 0 and s["reward"]["train"][0] is None  # step 0: the base model, validated only
    assert s["reward"]["valid"] == [d["scores"].get("valid_reward_mean") for d in metrics]
    assert [g["name"] for g in s["graders"]] == [g["name"] for g in metrics[1]["scores"]["graders"]]
    assert s["timing"]["sampling"] == [d["timing"]["step"]["sampling"] for d in metrics]
    for d, other in zip(metrics, s["timing"]["other"]):
        parts = sum(d["timing"]["step"][k] for k in ("sampling", "training", "eval"))
        assert other == pytest.approx(max(0.0, d["timing"]["step"]["full_iteration"] - parts))
    trained = metrics[1:]
    for kind, counts in s["errors"].items():
        assert counts[1:] == [d["errors"]["graders"][0][f"train_{kind}_count"] for d in trained]
    assert s["tokens"]["train_answer"][1:] == [d["usage"]["samples"]["train_completion_tokens_mean"]
                                               - d["usage"]["samples"]["train_reasoning_tokens_mean"] for d in trained]
    assert list(s["train"])[:6] == ["loss", "kl", "clip_fraction", "entropy", "grad_norm", "zero_signal_groups"]
    assert s["train"]["kl"] == [None] + [d["train"]["kl"] for d in trained]

    # Best checkpoint: the highest validation reward after an update (step 0 is the base model), marked once.
    valid = {d["step"]: d["scores"]["valid_reward_mean"] for d in metrics if "valid_reward_mean" in d["scores"]}
    best_step = max((step for step in valid if step > 0), key=valid.get)
    assert (view["best_step"], view["best_valid_reward"]) == (best_step, valid[best_step])
    assert [c["step"] for c in view["checkpoints"] if c["best"]] == [best_step]

    # Precision/recall per checkpoint come from each validation run's summary.
    for e in view["step_evals"]:
        summary = json.loads((ref.path / "evals" / f"step-{e['step']}" / "summary.json").read_text())
        assert e["precision"] == summary["classification"]["micro"]["precision"]
        assert e["reward_mean"] == summary["reward"]["mean"]
    assert view["series"]["precision_recall"]["step"] == sorted(valid)  # the base model's point included
    assert set(view["baselines"]) == {"most_frequent", "random"}
    assert [(g["step"], g["check"], g["verdict"]) for g in view["guards"]] == [(3, "response_length", "warn")]


def test_the_base_models_validation_is_never_the_best_checkpoint(tmp_path):
    run = write_job_run(tmp_path / "ftjob-base-best", steps=2, eval_interval=1)
    events = events_of(run)
    step0 = next(e for e in events if e.get("type") == "metrics" and e["data"]["step"] == 0)
    step0["data"]["scores"]["valid_reward_mean"] = 1.0  # better than any checkpoint
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    view = rundata.job_view(rundata.RunRef("ftjob-base-best", "job", run))
    assert view["series"]["reward"]["valid"][0] == 1.0
    assert view["best_step"] in (1, 2) and view["best_valid_reward"] < 1.0
    assert [c["step"] for c in view["checkpoints"] if c["best"]] == [view["best_step"]]


def test_a_running_job_skips_the_line_being_written_and_a_broken_line_is_named(runs_root, tmp_path):
    live = rundata.discover([runs_root / "runs"])["ftjob-live"]
    view = rundata.job_view(live)
    assert view["active"] and view["status"] == "running"
    assert view["series"]["step"] == [0, 1, 2, 3]  # the half-written step 99 is not there

    broken = shutil.copytree(live.path, tmp_path / "ftjob-broken")
    lines = (broken / "events.jsonl").read_text().splitlines()
    lines[2] = lines[2][:40]
    (broken / "events.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(rundata.RunDirError, match=r"events\.jsonl: line 3: not valid JSON"):
        rundata.job_view(rundata.RunRef("ftjob-broken", "job", broken))
    listing = rundata.list_runs(rundata.discover([tmp_path]))
    assert listing["jobs"][0]["status"] == "unreadable" and "line 3" in listing["jobs"][0]["error"]


def test_non_finite_values_never_reach_the_page(tmp_path):
    run = write_job_run(tmp_path / "ftjob-nan", steps=2, eval_interval=2)
    events = events_of(run)
    next(e for e in events if (e.get("data") or {}).get("step") == 1)["data"]["train"]["loss"] = float("nan")
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    view = rundata.job_view(rundata.RunRef("ftjob-nan", "job", run))
    assert view["series"]["train"]["loss"][1] is None and view["series"]["train"]["loss"][2] is not None
    json.dumps(view, allow_nan=False)


def test_eval_view_variance_histogram_and_precision_recall(runs_root):
    ref = rundata.discover([runs_root / "evals"])["base"]
    view = rundata.eval_view(ref)
    summary = json.loads((ref.path / "summary.json").read_text())
    items = [json.loads(line) for line in (ref.path / "output_items.jsonl").read_text().splitlines()]
    means = [it["mean"] for it in view["variance"]["items"]]
    assert means == sorted(it["mean"] for it in summary["items"])
    assert all(it["min"] <= it["mean"] <= it["max"] for it in view["variance"]["items"])
    assert sum(view["histogram"]["counts"]) == len(items)
    assert view["histogram"]["edges"][0] == 0.0 and view["histogram"]["edges"][-1] == 1.0
    perfect = sum(1 for it in items if it["results"][0]["score"] == 1.0)
    assert view["histogram"]["counts"][-1] == perfect
    assert view["classification"]["micro"] == {k: summary["classification"]["micro"][k]
                                               for k in ("precision", "recall", "f1")}
    assert set(view["classification"]["per_label"]) == set(summary["classification"]["per_label"])
    assert dict(view["figures"])["mean reward"] == summary["reward"]["mean"]


def test_output_items_filter_order_search_and_page(runs_root):
    ref = rundata.discover([runs_root / "evals"])["base"]
    everything = rundata.output_items(ref, limit=500)
    assert everything["total"] == 18
    failed = rundata.output_items(ref, status="fail", limit=500)
    assert failed["total"] == sum(1 for it in everything["items"] if it["status"] == "fail")
    ordered = rundata.output_items(ref, order="reward_desc", limit=500)["items"]
    assert [it["reward"] for it in ordered] == sorted((it["reward"] for it in ordered), reverse=True)
    page = rundata.output_items(ref, offset=5, limit=5)
    assert [it["id"] for it in page["items"]] == [it["id"] for it in everything["items"][5:10]]
    found = rundata.output_items(ref, query="document 3")
    assert found["total"] == 3 and {it["datasource_item_id"] for it in found["items"]} == {3}
    item = page["items"][0]
    assert item["input"][0]["role"] == "user" and item["output"].startswith("{")
    assert item["results"][0]["sub_rewards"].keys() == {"precision", "recall"}


def test_compare_puts_runs_side_by_side_with_the_noise_test(runs_root):
    refs = rundata.discover([runs_root / "evals"])
    rows = rundata.compare([refs["base"], refs["tuned"]])["runs"]
    base, tuned = rows[0], rows[1]
    assert (base["key"], tuned["key"]) == ("base", "tuned")
    assert tuned["vs_first_diff"] == pytest.approx(tuned["reward"] - base["reward"])
    assert isinstance(tuned["vs_first_significant"], bool)
    assert base["histogram"]["edges"] == tuned["histogram"]["edges"]
    assert [r["name"] for r in rows[2:]] == ["baseline:most_frequent", "baseline:random"]
    assert all(r["reward"] is None or math.isfinite(r["reward"]) for r in rows)
