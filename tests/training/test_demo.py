"""The demo's verdict: base model vs the chosen checkpoint, first on the run's own validations, then on
validation rows the run never used (the held-out comparison that is free of checkpoint-selection bias)."""

from __future__ import annotations

import json

from rich.console import Console

from tests.training.test_train import rows, write_job


def test_the_verdict_compares_on_validation_and_on_unseen_rows(home, tmp_path):
    from openrft.demo import held_out_comparison, summarize_run
    from openrft.training import create_job, run_job

    body = write_job(tmp_path, steps=2, hp={"eval_interval": 2})
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(6)))
    body["openrft"]["max_valid_rows"] = 2  # 2 rows for the run's validations, 4 left over
    create_job(body, run_dir=tmp_path / "run")
    assert run_job(tmp_path / "run", progress=False)["status"] == "succeeded"

    console = Console(record=True, width=200)
    verdict = summarize_run(tmp_path / "run", console)
    assert verdict["base_step"] == 0 and verdict["best_step"] == 2
    assert verdict["gain"] == verdict["best_reward"] - verdict["base_reward"]
    assert verdict["gain_exceeds_2x_noise"] == (verdict["gain"] > 2 * verdict["base_run_to_run_std"])

    held = held_out_comparison(tmp_path / "run", verdict["best_step"], rows=3, console=console)
    assert held["rows"] == 3 and held["runs"] == 2
    base = json.loads((tmp_path / "run" / "held_out" / "base" / "summary.json").read_text())
    tuned = json.loads((tmp_path / "run" / "held_out" / "step-2" / "summary.json").read_text())
    assert held["base_reward"] == base["reward"]["mean"] and held["checkpoint_reward"] == tuned["reward"]["mean"]
    assert tuned["model"].endswith("checkpoints/step-2")
    # the held-out rows are none of the rows the run validated on
    seen = {json.loads(line)["datasource_item"]["id"]
            for line in (tmp_path / "run" / "evals" / "step-0" / "output_items.jsonl").read_text().splitlines()}
    unseen = {json.loads(line)["datasource_item"]["id"]
              for line in (tmp_path / "run" / "held_out" / "base" / "output_items.jsonl").read_text().splitlines()}
    assert len(seen) == 2 and len(unseen) == 3 and not seen & unseen
    assert "held out (3 unseen rows × 2 runs)" in console.export_text()
