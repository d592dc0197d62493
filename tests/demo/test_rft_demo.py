"""The demo's verdict: base model vs the chosen checkpoint, first on the run's own validations, then on whole
groups that neither training nor the validation rows that chose the checkpoint contain; over several seeds,
the held-out gain's mean ± std and each seed's clustered CI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.training.test_train import GRADER, rows, write_job


def valid_rows() -> list[dict]:
    """8 validation rows in 6 documents (d0 and d1 hold two rows each), ids apart from the training rows'."""
    docs = ["d0", "d0", "d1", "d1", "d2", "d3", "d4", "d5"]
    return [{**row, "id": f"v{i}", "doc": docs[i]} for i, row in enumerate(rows(8))]


def test_the_verdict_compares_on_validation_and_on_unseen_groups(home, tmp_path):
    from openrft.demo import held_out_comparison, summarize_run, validation_groups
    from openrft.training import create_job, run_job

    body = write_job(tmp_path, steps=2, hp={"eval_interval": 2})
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in valid_rows()))
    body["openrft"].update(max_valid_rows=2, group_key="doc")  # 2 rows for the run's validations
    create_job(body, run_dir=tmp_path / "run")
    assert run_job(tmp_path / "run", progress=False)["status"] == "succeeded"

    console = Console(record=True, width=250)
    verdict = summarize_run(tmp_path / "run", console)
    assert verdict["base_step"] == 0 and verdict["best_step"] == 2
    assert verdict["gain"] == pytest.approx(verdict["best_reward"] - verdict["base_reward"])
    low, high = verdict["gain_ci95"]
    assert low <= verdict["gain"] <= high
    assert verdict["gain_ci_above_zero"] == (low > 0)

    held = held_out_comparison(tmp_path / "run", verdict["best_step"], rows=3, console=console)
    assert held["runs"] == 2 and 1 <= held["rows"] <= 3
    base = json.loads((tmp_path / "run" / "held_out" / "base" / "summary.json").read_text())
    tuned = json.loads((tmp_path / "run" / "held_out" / "step-2" / "summary.json").read_text())
    assert held["base_reward"] == base["reward"]["mean"] and held["checkpoint_reward"] == tuned["reward"]["mean"]
    assert tuned["model"].endswith("checkpoints/step-2")
    assert held["shares"]["base"] == {"truncated": base["tokens"]["truncated_share"],
                                      "parse_error": base["errors"]["sample_parse_error_rate"]}
    assert held["f1"] == {} and "base_macro" not in held  # the tiny task has no labels

    def docs(path):
        return [json.loads(line)["datasource_item"]["doc"] for line in path.read_text().splitlines()]

    seen = set(docs(tmp_path / "run" / "evals" / "step-0" / "output_items.jsonl"))
    unseen = docs(tmp_path / "run" / "held_out" / "base" / "output_items.jsonl")
    assert {f"doc={d}" for d in seen} == validation_groups(tmp_path / "run")
    assert not seen & set(unseen)  # no held-out document was validated on
    everywhere = [row["doc"] for row in valid_rows()]
    per_doc = [unseen.count(doc) // 2 for doc in set(unseen)]  # records of each held-out document (2 runs each)
    assert max(per_doc) - min(per_doc) <= 1  # spread over as many documents as possible (round-robin)
    assert all(unseen.count(doc) // 2 <= everywhere.count(doc) for doc in set(unseen))
    assert held["groups"] == len(set(unseen)) and held["rows"] == len(unseen) // 2
    assert held["records"] == f"{held['rows']} records of {held['groups']} groups (doc)"
    assert held["held_out_groups"] == sorted(f"doc={d}" for d in set(unseen))
    assert held["n_groups"] == held["groups"]  # the CI resampled documents, not rows
    assert {it["group"] for it in base["items"]} == {f"doc={d}" for d in unseen}  # run_eval(group_key=...)
    text = console.export_text()
    assert f"held out ({held['records']} × 2 runs)" in text and "macro F1" in text and "unparseable" in text


def test_held_out_acts_of_the_real_eurovoc_data_share_no_act_with_training_or_validation(shared_data):
    """The demo's configuration (examples/eurovoc/job.yaml: 24 validation rows, seeds 42-44, 48 held-out rows)
    on the real acts: training and validation files share no act, and the held-out rows are records of acts apart
    from both training and every seed's validation subset (an act a subset touched is excluded whole)."""
    from openrft.data.splits import group_subset, groups_in
    from openrft.demo import HELD_OUT_ROWS, held_out_rows, records_of
    from openrft.tasks.eurovoc import read_acts

    train = read_acts(shared_data / "eurovoc" / "train.jsonl")
    valid = read_acts(shared_data / "eurovoc" / "validation.jsonl")
    acts = lambda rows_: {r["celex_id"] for r in rows_}  # noqa: E731
    assert not acts(train) & acts(valid), "the task's split puts an act on both sides"
    seeds = [42, 43, 44]
    validated = [group_subset(valid, 24, s, "celex_id") for s in seeds]
    excluded = set().union(*(groups_in(v, "celex_id") for v in validated))
    held = held_out_rows(valid, train, rows=HELD_OUT_ROWS, seed=seeds[0] + 1, group_key="celex_id",
                         exclude_groups=excluded)
    assert 0 < len(held) <= HELD_OUT_ROWS
    assert not acts(held) & acts(train)
    for subset in validated:
        assert 0 < len(subset) <= 24 and not acts(held) & acts(subset)
    per_act = [sum(r["celex_id"] == act for r in held) for act in acts(held)]
    assert max(per_act) - min(per_act) <= 1  # as many acts as possible: one record of each, then a second
    assert len(acts(held)) >= 30  # enough acts for a clustered CI to mean something
    print(records_of(len(held), len(acts(held)), "celex_id"))


def stub_verdict(seed: int, gain: float, low: float, high: float, *, mf_diff: float = 0.02,
                 micro_f1: float = 0.5) -> dict:
    """A verdict shaped as `run_demo` writes it, with made-up figures (no training)."""
    prf = lambda f1: {"precision": f1, "recall": f1, "f1": f1}  # noqa: E731
    return {"seed": seed, "status": "succeeded", "best_step": 8, "held_out": {
        "rows": 32, "groups": 14, "records": "32 records of 14 acts", "n_records": 32, "n_groups": 14,
        "held_out_groups": ["celex_id=A", "celex_id=B"], "gain": gain, "gain_ci95": [low, high],
        "gain_ci_above_zero": low > 0, "most_frequent_diff": mf_diff, "beats_most_frequent_baseline": low > mf_diff,
        "shares": {"base": {"truncated": 0.3, "parse_error": 0.2}, "checkpoint": {"truncated": 0.1, "parse_error": 0.05}},
        "f1": {"base": {"micro": prf(0.4), "macro": prf(0.2)}, "checkpoint": {"micro": prf(micro_f1), "macro": prf(0.3)},
               "most_frequent": {"micro": prf(0.45), "macro": prf(0.05)}, "random": {"micro": prf(0.1), "macro": prf(0.08)}}}}


def test_seeds_aggregate_the_held_out_gain_with_its_spread(tmp_path):
    from openrft.demo import aggregate_seeds, print_seeds, seeds_chart

    verdicts = [stub_verdict(42, 0.10, 0.04, 0.16, micro_f1=0.50), stub_verdict(43, 0.08, 0.03, 0.13, micro_f1=0.48),
                stub_verdict(44, 0.12, 0.05, 0.19, micro_f1=0.55)]
    summary = aggregate_seeds(verdicts)
    assert summary["n_seeds"] == 3 and summary["seeds"] == [42, 43, 44] and summary["failed_seeds"] == []
    assert summary["gain_mean"] == pytest.approx(0.10)
    assert summary["gain_std"] == pytest.approx(np.std([0.10, 0.08, 0.12], ddof=1))
    assert summary["f1"]["checkpoint"]["micro"]["f1"]["mean"] == pytest.approx(np.mean([0.50, 0.48, 0.55]))
    assert summary["f1"]["checkpoint"]["micro"]["f1"]["std"] == pytest.approx(np.std([0.50, 0.48, 0.55], ddof=1))
    assert summary["f1"]["most_frequent"]["macro"]["f1"] == {"mean": pytest.approx(0.05), "std": pytest.approx(0.0), "n": 3}
    assert summary["shares"]["checkpoint"]["truncated"]["mean"] == pytest.approx(0.1)
    assert summary["same_held_out_rows"] and summary["records"] == "32 records of 14 acts"
    v = summary["verdict"]
    assert v["every_seed_ci_above_zero"] and v["every_seed_ci_low_above_most_frequent"]
    assert v["mean_minus_2std_above_zero"] and v["gain_holds"]
    assert "+0.100 ± 0.020" in v["text"] and "3/3 seeds" in v["text"]

    chart = seeds_chart(summary, tmp_path / "seeds.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000
    console = Console(record=True, width=250)
    print_seeds(summary, console)
    text = console.export_text()
    assert "+0.080 [+0.030, +0.130]" in text and "0.300 → 0.100" in text and "macro F1" in text
    assert "0.510 ± 0.036" in text  # the checkpoint's micro F1 over seeds


def test_one_seed_whose_ci_crosses_zero_or_a_wide_spread_fails_the_verdict():
    from openrft.demo import aggregate_seeds

    crossing = aggregate_seeds([stub_verdict(1, 0.10, 0.04, 0.16), stub_verdict(2, 0.02, -0.03, 0.07)])
    assert not crossing["verdict"]["every_seed_ci_above_zero"] and not crossing["verdict"]["gain_holds"]
    spread = aggregate_seeds([stub_verdict(1, 0.20, 0.01, 0.39), stub_verdict(2, 0.02, 0.01, 0.03)])
    assert spread["verdict"]["every_seed_ci_above_zero"]
    assert spread["verdict"]["mean_minus_2std_above_zero"] is False and not spread["verdict"]["gain_holds"]
    single = aggregate_seeds([stub_verdict(1, 0.10, 0.04, 0.16)])
    assert single["gain_std"] is None and single["verdict"]["mean_minus_2std_above_zero"] is None
    assert not single["verdict"]["gain_holds"] and "one seed" in single["verdict"]["text"]
    failed = aggregate_seeds([{"seed": 1, "status": "failed"}, stub_verdict(2, 0.1, 0.05, 0.15)])
    assert failed["failed_seeds"] == [1] and failed["n_seeds"] == 1
    assert aggregate_seeds([{"seed": 1, "status": "failed"}])["verdict"]["gain_holds"] is False


def test_run_seeds_uses_one_held_out_set_apart_from_every_seeds_validation(tmp_path, monkeypatch):
    import openrft.demo as demo

    calls = []

    def train_one(*, output_dir, seed, **_):
        output_dir.mkdir(parents=True)
        return output_dir, {"seed": seed, "status": "succeeded", "best_step": 8}

    def held_out_comparison(run_dir, step, *, rows, console, exclude_groups, draw_seed, base_from):
        calls.append((run_dir.name, step, rows, set(exclude_groups), draw_seed, base_from))
        seed = int(run_dir.name.split("-")[1])
        return stub_verdict(seed, 0.05 + 0.01 * (seed - 7), 0.01, 0.1)["held_out"]

    monkeypatch.setattr(demo, "train_one", train_one)
    monkeypatch.setattr(demo, "validation_groups", lambda run_dir: {f"celex_id={run_dir.name}"})
    monkeypatch.setattr(demo, "held_out_comparison", held_out_comparison)
    summary = demo.run_seeds(3, seed=7, output_dir=tmp_path / "sweep", held_out=32)
    every = {"celex_id=seed-7", "celex_id=seed-8", "celex_id=seed-9"}
    first_base = tmp_path / "sweep" / "seed-7" / "held_out" / "base"  # the base model is evaluated once
    assert calls == [(f"seed-{s}", 8, 32, every, 8, None if s == 7 else first_base) for s in (7, 8, 9)]
    assert summary["seeds"] == [7, 8, 9] and summary["gain_mean"] == pytest.approx(0.06)
    on_disk = json.loads((tmp_path / "sweep" / "seeds.json").read_text())
    assert on_disk["gain_std"] == pytest.approx(0.01) and on_disk["chart"].endswith("seeds.png")
    assert (tmp_path / "sweep" / "seeds.png").stat().st_size > 5000
    assert json.loads((tmp_path / "sweep" / "seed-8" / "verdict.json").read_text())["held_out"]["gain"] == pytest.approx(0.06)


def test_the_rft_only_demo_command_passes_seeds_and_seed(tmp_path, monkeypatch):
    import openrft.demo as demo
    from openrft.cli import app

    got = {}
    monkeypatch.setattr(demo, "run_seeds", lambda n, **kw: got.update(n=n, **kw) or {"failed_seeds": [], "n_seeds": n})
    monkeypatch.setattr(demo, "run_demo", lambda **kw: got.update(single=kw) or {"status": "succeeded"})
    out = CliRunner().invoke(app, ["demo", "--rft-only", "--seeds", "3", "--seed", "5", "--out", str(tmp_path / "o"),
                                   "--max-steps", "4"])
    assert out.exit_code == 0, out.output
    assert got["n"] == 3 and got["seed"] == 5 and got["output_dir"] == tmp_path / "o" and got["max_steps"] == 4
    assert got["held_out"] == 48 and "single" not in got
    got.clear()
    assert CliRunner().invoke(app, ["demo", "--rft-only", "--seed", "9"]).exit_code == 0
    assert got["single"]["seed"] == 9 and got["single"]["output_dir"] is None
    monkeypatch.setattr(demo, "run_seeds", lambda n, **kw: {"failed_seeds": [6], "n_seeds": n - 1})
    assert CliRunner().invoke(app, ["demo", "--rft-only", "--seeds", "2"]).exit_code == 1


def test_a_base_eval_is_reused_only_on_the_same_rows_model_and_sampling(tmp_path):
    from openrft.demo import reusable
    from openrft.engines import SamplingParams

    params = SamplingParams(n=1, temperature=1.0, max_tokens=48, seed=43, response_format={"type": "json_object"})
    rows_ = [{"id": "a_en"}, {"id": "b_en"}]
    sampling = {k: v for k, v in params.__dict__.items() if k != "n"}
    summary = {"model": "default", "sampling": {**sampling, "seed": 44},  # another seed's sampling seed
               "items": [{"index": 0, "id": "a_en"}, {"index": 1, "id": "b_en"}]}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert reusable(tmp_path, rows_, "default", params)
    assert not reusable(tmp_path, rows_[:1], "default", params)
    assert not reusable(tmp_path, rows_, "other-model", params)
    assert not reusable(tmp_path, rows_, "default", SamplingParams(**{**params.__dict__, "max_tokens": 64}))
    assert not reusable(tmp_path / "absent", rows_, "default", params)


LABELS_FORMAT = {"type": "json_schema", "json_schema": {"name": "topics", "strict": True, "schema": {
    "type": "object", "properties": {"labels": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}},
    "required": ["labels"], "additionalProperties": False}}}


def test_the_held_out_evals_sample_and_score_as_the_job_validates(home, tmp_path, monkeypatch):
    """The held-out comparison takes the job's sampling parameters (temperature, top_p, max_tokens,
    response_format, reasoning effort; one sample per run, seeded with the job's seed + 1), its runs per item,
    grader, label set, label field and group key, and the whole training file for the baselines."""
    from dataclasses import replace

    import openrft.evals as evals
    from openrft.demo import held_out_comparison
    from openrft.engines.base import SamplingParams
    from openrft.engines.transformers import TransformersEngine
    from openrft.runs import ResolvedJob
    from openrft.training import create_job

    body = write_job(tmp_path, hp={"reasoning_effort": "low", "eval_samples": 3},
                     extra={"temperature": 0.7, "top_p": 0.9, "max_tokens": 300, "labels": ["a", "b"],
                            "label_key": "topics", "group_key": "doc"})
    body["method"]["reinforcement"]["response_format"] = LABELS_FORMAT
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in valid_rows()))
    create_job(body, run_dir=tmp_path / "run")

    class Stop(Exception):
        pass

    calls = []

    def run_eval(rows_, **kwargs):
        calls.append({"rows": rows_, **kwargs})
        raise Stop

    monkeypatch.setattr(evals, "run_eval", run_eval)
    monkeypatch.setattr(TransformersEngine, "from_name", classmethod(lambda cls, name, device="cpu": name))
    with pytest.raises(Stop):
        held_out_comparison(tmp_path / "run", 2, rows=3, console=Console(record=True, width=200))
    call = calls[0]
    stored = json.loads((tmp_path / "run" / "job.json").read_text())
    seed = stored["method"]["reinforcement"]["hyperparameters"]["resolved"]["seed"]
    assert seed == 7
    assert call["params"] == SamplingParams(n=1, temperature=0.7, top_p=0.9, max_tokens=300, seed=seed + 1,
                                            response_format=LABELS_FORMAT, reasoning_effort="low")
    job = ResolvedJob.load(tmp_path / "run")
    assert call["params"] == replace(job.valid_params(0), seed=seed + 1)  # the validations' settings, another seed
    assert (call["runs"], call["grader"], call["labels"], call["label_key"], call["seed"], call["group_key"]) == \
        (3, GRADER, ["a", "b"], "topics", seed, "doc")
    assert call["train_rows"] == rows(4) and call["name"] == "base model"
    assert {row["id"] for row in call["rows"]} <= {row["id"] for row in valid_rows()}
