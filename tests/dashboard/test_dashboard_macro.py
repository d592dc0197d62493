"""Macro-F1 beside micro-F1 in the dashboard's run data and in the static report (issue 14, item 8)."""

from __future__ import annotations

import json
import shutil

import pytest

from openrft.dashboard import build_report, rundata


def test_run_data_carries_macro_beside_micro(runs_root):
    refs = rundata.discover([runs_root / "runs"])
    view = rundata.job_view(refs["ftjob-done"])
    for e in view["step_evals"]:
        summary = json.loads((refs["ftjob-done"].path / "evals" / f"step-{e['step']}" / "summary.json").read_text())
        for k in ("precision", "recall", "f1"):
            assert e[f"macro_{k}"] == pytest.approx(summary["classification"]["macro"][k])
    assert view["series"]["precision_recall"]["macro_f1"] == [e["macro_f1"] for e in view["step_evals"]]
    assert view["baselines"]["most_frequent"]["macro_f1"] == 0.3 and view["baselines"]["most_frequent"]["f1"] == 0.44

    ref = rundata.discover([runs_root / "evals"])["base"]
    figures = dict(rundata.eval_view(ref)["figures"])
    macro = json.loads((ref.path / "summary.json").read_text())["classification"]["macro"]
    assert figures["macro precision / recall / F1"] == " / ".join(f"{macro[k]:.3f}" for k in ("precision", "recall", "f1"))
    assert "micro precision / recall / F1" in figures
    assert figures["baseline most_frequent: reward / micro F1 / macro F1"] == "0.400 / 0.440 / 0.300"


def test_the_static_report_shows_macro_f1(runs_root, tmp_path):
    run = shutil.copytree(runs_root / "runs" / "ftjob-done", tmp_path / "ftjob-done")
    page = build_report(run).read_text()
    assert "Validation: micro and macro precision / recall / F1" in page and "<th>macro F1</th>" in page
    assert "baseline most_frequent" in page
    ev = shutil.copytree(runs_root / "evals" / "base", tmp_path / "base")
    assert "macro precision / recall / F1" in build_report(ev, tmp_path / "out").read_text()
