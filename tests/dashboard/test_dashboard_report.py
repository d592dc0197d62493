"""Static reports: PNG charts and one self-contained HTML file, from the library and from `openrft report`."""

from __future__ import annotations

import base64
import re
import shutil

import pytest
from typer.testing import CliRunner

from openrft.cli import app
from openrft.dashboard import build_report
from openrft.dashboard.rundata import RunDirError

PNG = b"\x89PNG\r\n\x1a\n"


def inlined_images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_job_report_has_every_chart_as_png_and_inlined(runs_root, tmp_path):
    run = shutil.copytree(runs_root / "runs" / "ftjob-done", tmp_path / "ftjob-done")
    page = build_report(run)
    assert page == run / "report" / "report.html"
    pngs = {p.name: p.read_bytes() for p in (run / "report").glob("*.png")}
    assert set(pngs) == {"reward.png", "reward_per_grader.png", "precision_recall_steps.png", "precision_recall.png",
                         "tokens.png", "step_duration.png", "grader_latency.png", "grader_errors.png",
                         "rl_internals.png", "validation_variance.png"}
    assert all(data.startswith(PNG) and len(data) > 5000 for data in pngs.values())
    html = page.read_text()
    assert sorted(inlined_images(html)) == sorted(pngs.values())  # self-contained: the same bytes, inlined
    assert not re.search(r'(?:src|href)="(?!data:)', html)  # and nothing else to load
    assert "Grading token usage" in html and "no model graders in this job" in html
    assert "★ best" in html


def test_eval_report_uses_the_eval_modules_plots(runs_root, tmp_path):
    run = shutil.copytree(runs_root / "evals" / "base", tmp_path / "base")
    page = build_report(run, tmp_path / "out")
    assert page == tmp_path / "out" / "report.html"
    names = {p.name for p in (tmp_path / "out").glob("*.png")}
    assert names == {"variance.png", "reward_histogram.png", "precision_recall.png"}
    assert len(inlined_images(page.read_text())) == 3


def test_report_command(runs_root, tmp_path):
    run = shutil.copytree(runs_root / "evals" / "tuned", tmp_path / "tuned")
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "report.html" in "".join(result.output.split()) and (run / "report" / "report.html").is_file()

    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["report", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "not a run directory" in " ".join(result.output.split())
    with pytest.raises(RunDirError, match="not a run directory"):
        build_report(tmp_path / "empty")


def test_a_finished_job_gets_its_report_and_a_failing_report_fails_nothing(runs_root, tmp_path):
    from openrft.dashboard import report_finished_job
    from openrft.runs import read_events

    run = shutil.copytree(runs_root / "runs" / "ftjob-done", tmp_path / "ftjob-done")
    assert report_finished_job(run, "failed") is None and not (run / "report").exists()
    page = report_finished_job(run, "succeeded")
    assert page == run / "report" / "report.html" and page.is_file()
    assert read_events(run)[-1]["message"] == f"Report written: {page}"

    shutil.rmtree(run / "report")
    (run / "report").write_text("a file where the report folder goes")  # the report cannot be written
    assert report_finished_job(run, "succeeded") is None
    last = read_events(run)[-1]
    assert last["level"] == "warn" and last["message"].startswith("Report could not be written:")
