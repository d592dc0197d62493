"""A real eval run of the embedded model: output items, per-item statistics, P/R/F1, baselines, plots, compare."""

import json

import pytest
from typer.testing import CliRunner

LABELS = ["AGRICULTURE", "TRADE", "ENERGY"]
FORMAT = {"type": "json_schema", "json_schema": {"name": "labels", "strict": True, "schema": {
    "type": "object", "properties": {"labels": {"type": "array", "items": {"type": "string", "enum": LABELS}}},
    "required": ["labels"], "additionalProperties": False}}}
F1 = {"type": "python", "name": "f1", "source": (
    "def grade(sample, item):\n"
    "    p = set((sample.get('output_json') or {}).get('labels') or [])\n"
    "    t = set(item['labels'])\n"
    "    tp = len(p & t)\n"
    "    return 0.0 if not tp else 2 * tp / (len(p) + len(t))\n")}


def rows():
    texts = [("Rules on milk quotas for dairy farmers.", ["AGRICULTURE"]),
             ("Customs duties on imported steel.", ["TRADE"]),
             ("Subsidies for wind farms and grid tariffs on farm land.", ["ENERGY", "AGRICULTURE"])]
    return [{"messages": [{"role": "user", "content": f"Which domains (AGRICULTURE, TRADE, ENERGY) does this act "
                                                      f"belong to? Answer in JSON.\n\n{t}"}], "labels": labels, "id": i}
            for i, (t, labels) in enumerate(texts)]


def test_eval_run_writes_openai_objects_and_figures(home, tmp_path, monkeypatch):
    from openrft.engines import SamplingParams, get_engine
    from openrft.evals import compare, load_eval, run_eval

    engine = get_engine("default")
    params = SamplingParams(max_tokens=24, temperature=1.0, seed=3, response_format=FORMAT)
    result = run_eval(rows(), engine=engine, grader=F1, params=params, runs=3, out_dir=tmp_path / "ev",
                      labels=LABELS, train_rows=rows(), progress=False, text_baseline=True)
    assert result.run.object == "eval.run" and result.run.result_counts.total == 9
    assert len(result.output_items) == 9
    item = result.output_items[0]
    assert item.object == "eval.run.output_item" and item.results[0].name == "f1"
    assert item.sample.output_json is not None  # the schema was enforced
    s = result.summary
    assert s["reward"]["runs"] == 3 and len(s["items"]) == 3
    for it in s["items"]:
        assert it["min"] <= it["mean"] <= it["max"]
    # Under the grammar every finished answer parses; only an answer cut by max_tokens can fail to.
    for rollout in result.rollouts:
        for sample in rollout.samples:
            assert sample.parse_error is None or sample.finish_reason == "length"
    assert s["errors"]["sample_parse_error_rate"] <= s["tokens"]["truncated_share"]
    assert set(s["classification"]["per_label"]) == set(LABELS)
    # the rows are multi-label (every_label); training rows were given (the text classifier, fitted on them)
    assert set(s["baselines"]) == {"most_frequent", "random", "every_label", "text_classifier"}
    other = s["classification"]["other_items"]  # the answers on their own act and on the two others
    assert other["n_samples"] == 9 and other["n_groups"] == 3 and other["own"] == pytest.approx(
        s["classification"]["samples_f1"]) and other["ci95"][0] <= other["diff"] <= other["ci95"][1]
    assert len(s["baselines"]["text_classifier"]["item_means"]) == 3
    from rich.console import Console

    from openrft.evals.commands import summary_table

    console = Console(record=True, width=200)
    console.print(summary_table(s))
    line = next(t for t in console.export_text().splitlines() if "F1 own − other items [95% CI]" in t)
    assert f"│ {other['diff']:+.3f} [" in line
    every = s["baselines"]["every_label"]["classification"]
    assert every["micro"]["recall"] == 1.0 and every["macro"]["recall"] == 1.0
    assert s["baselines"]["most_frequent"]["example"] == ["AGRICULTURE"]  # k = round(4/3) = 1
    for name in ("variance.png", "reward_hist.png", "precision_recall.png"):
        assert (tmp_path / "ev" / "plots" / name).stat().st_size > 1000
    assert "Output items" in (tmp_path / "ev" / "index.html").read_text()

    again = load_eval(tmp_path / "ev")
    assert again.summary["reward"]["mean"] == s["reward"]["mean"]
    rows_ = compare([again, again])
    assert rows_[1]["vs_first_diff"] == 0.0 and rows_[1]["vs_first_significant"] is False
    assert [r["name"] for r in rows_][-4:] == ["baseline:most_frequent", "baseline:random", "baseline:every_label",
                                             "baseline:text_classifier"]

    from openrft.cli import app
    from openrft.evals import commands

    # The CLI's console fixed its width when it was imported (COLUMNS=80 in CI): widen it so table cells don't wrap.
    monkeypatch.setattr(commands.console, "width", 200)
    out = CliRunner().invoke(app, ["eval", "--compare", str(tmp_path / "ev"), "--compare", str(tmp_path / "ev")])
    assert out.exit_code == 0, out.output
    assert "comparison" in out.output and "baseline:most_frequent" in out.output
    lines = (tmp_path / "ev" / "output_items.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["run_id"] == result.run.id


def test_eval_folders_of_model_paths_are_never_hidden():
    """`openrft eval --model PATH` names its folder after the path's end, which must not start with a dot."""
    from openrft.evals.commands import _slug

    path = "/root/.openrft/runs/" + "x" * 46 + "/checkpoints/step-16"
    assert path.replace("/", "_")[-80:].startswith(".")  # the case: the cut lands on ".openrft"
    assert not _slug(path).startswith(".") and _slug(path).endswith("step-16")
    assert _slug("default") == "default"


def test_eval_compares_prompt_variants_side_by_side(home, tmp_path, shared_data):
    """`openrft eval --prompt short --prompt described`: one eval run per variant on the same items, the same
    grader and sampling, then the paired comparison of the two."""
    from openrft.cli import app

    out = CliRunner().invoke(app, ["eval", "--task", "eurovoc", "--prompt", "short", "--prompt", "described",
                                   "--limit", "2", "--runs", "1", "--max-tokens", "24", "--out", str(tmp_path / "ev"),
                                   "--text-baseline"],
                             env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    short = json.loads((tmp_path / "ev" / "short" / "summary.json").read_text())
    described = json.loads((tmp_path / "ev" / "described" / "summary.json").read_text())
    assert [it["id"] for it in short["items"]] == [it["id"] for it in described["items"]] and len(short["items"]) == 2
    assert "text_classifier" in short["baselines"] and "text_classifier" in described["baselines"]
    first = json.loads((tmp_path / "ev" / "described" / "output_items.jsonl").read_text().splitlines()[0])
    assert "each with a few of the EuroVoc terms" in json.dumps(first["sample"]["input"])
    assert "default (short)" in out.output and "default (described)" in out.output and "comparison" in out.output
    assert "baseline text_classifier" in out.output  # (the two items are one act: no other items to compare)
    bad = CliRunner().invoke(app, ["eval", "--task", "gsm8k", "--prompt", "short", "--limit", "1"])
    assert bad.exit_code == 2 and "has no prompt variants" in bad.output


def test_the_text_baseline_needs_a_task_s_training_split_apart_from_the_scored_one(home, tmp_path):
    from openrft.cli import app

    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"messages": [{"role": "user", "content": "x"}], "labels": ["a"], "id": "1"}) + "\n")
    for args in (["--data", str(rows), "--grader", str(rows)], ["--task", "eurovoc", "--split", "train"]):
        out = CliRunner().invoke(app, ["eval", *args, "--text-baseline", "--limit", "1"])
        assert out.exit_code == 2 and "--text-baseline fits on a task's training split" in out.output, out.output
