"""The dashboard in a real browser: headless Chromium (Debian's package, `scripts/setup_browser.sh`) driven by
Playwright loads the page for a real training run, checks that every chart is drawn with data points, follows
a running job live, and saves screenshots (the README's come from scripts/readme_images.py)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from openrft.dashboard.web import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).is_file():
    pytest.skip("Chromium is not installed: run `bash scripts/setup_browser.sh` (Debian's chromium package)",
                allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install playwright")

# Every chart on the page: its canvas id and, per dataset, the label and the number of drawable points.
READ_CHARTS = """() => [...document.querySelectorAll('canvas')].map(canvas => {
  const chart = Chart.getChart(canvas);
  return {id: canvas.id, drawn: !!chart && canvas.width > 0 && canvas.height > 0,
          datasets: chart ? chart.data.datasets.map(d => ({label: d.label,
            points: d.data.filter(p => p !== null && (typeof p !== 'object' || Array.isArray(p) || p.y !== null)).length
          })) : []};
})"""


class Server:
    """The standalone dashboard app served by uvicorn in a thread on a free local port."""

    def __init__(self, *roots: Path):
        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(create_app(roots), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert time.time() < deadline, "the dashboard server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def url(self, fragment: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/dashboard/{fragment}"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A Chromium with a fresh profile; the page it opens records errors and any request leaving this machine."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1400, "height": 1000})
        yield context
        context.close()


@pytest.fixture()
def page(browser):
    page = browser.new_page()
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("console", lambda msg: msg.type == "error" and page.problems.append(f"console: {msg.text}"))
    page.on("request", lambda request: urlparse(request.url).hostname not in ("127.0.0.1", None)
            and not request.url.startswith("data:") and page.problems.append(f"external request: {request.url}"))
    yield page
    page.close()


def open_view(page, url: str) -> dict[str, dict]:
    page.goto(url)
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=20000)
    return {chart["id"]: chart for chart in page.evaluate(READ_CHARTS)}


def points(chart: dict, label: str) -> int:
    return next(d["points"] for d in chart["datasets"] if d["label"] == label)


def save_screenshot(page, path: Path) -> None:
    """A full-page screenshot into the test's tmp dir."""
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10000


def test_job_page_of_a_real_training_run_draws_every_chart(real_job, page, tmp_path):
    metrics = [json.loads(line)["data"] for line in (real_job / "events.jsonl").read_text().splitlines()
               if '"type": "metrics"' in line]
    train_steps = [d["step"] for d in metrics if d["scores"].get("train_reward_mean") is not None]
    valid_steps = [d["step"] for d in metrics if d["scores"].get("valid_reward_mean") is not None]
    with Server(real_job.parent) as server:
        charts = open_view(page, server.url(f"#/job/{real_job.name}"))
        for chart_id in ("chart-reward", "chart-graders", "chart-tokens", "chart-duration", "chart-latency",
                         "chart-train-loss", "chart-train-kl", "chart-train-clip_fraction", "chart-train-entropy",
                         "chart-train-zero_signal_groups"):
            assert chart_id in charts, f"{chart_id} not drawn (charts: {sorted(charts)})"
            chart = charts[chart_id]
            assert chart["drawn"] and any(d["points"] > 0 for d in chart["datasets"]), chart
        assert points(charts["chart-reward"], "train") == len(train_steps) >= 1
        assert points(charts["chart-reward"], "validation") == len(valid_steps) >= 2  # the base model's and step 1's
        assert points(charts["chart-reward"], "best checkpoint") == 1
        assert points(charts["chart-duration"], "sampling") == len(metrics)
        # Not a label task: the precision/recall cards say so instead of drawing empty axes; the errors chart is
        # drawn only when the run had grader errors.
        assert "chart-pr-steps" not in charts and page.locator("text=not a label task").count() == 2
        errors = sum((d["errors"]["graders"][0].get(k) or 0) for d in metrics for k in d["errors"]["graders"][0]
                     if k.endswith("_count"))
        assert ("chart-errors" in charts) == (errors > 0)
        if not errors:
            assert page.locator("text=no grader errors").count() == 1
        best = page.locator("#checkpoint-table tr", has_text="★ best")
        assert best.count() == 1
        save_screenshot(page, tmp_path / "dashboard-job.png")
        assert page.problems == []


def test_validation_run_page_variance_histogram_and_output_items(real_job, page, tmp_path):
    step = max(int(p.name.split("-")[1]) for p in (real_job / "evals").iterdir())
    n_items = len((real_job / "evals" / f"step-{step}" / "output_items.jsonl").read_text().splitlines())
    with Server(real_job.parent) as server:
        charts = open_view(page, server.url(f"#/eval/{real_job.name}/evals/step-{step}"))
        assert points(charts["chart-variance"], "mean") == 2  # two validation rows
        assert points(charts["chart-variance"], "min–max") == 2
        assert sum(page.evaluate("Chart.getChart(document.getElementById('chart-histogram')).data.datasets[0].data")) \
            == n_items
        page.wait_for_selector("details.item")
        assert page.locator("details.item").count() == n_items
        page.locator("details.item summary").first.click()
        assert "Write one short sentence about" in page.locator("details.item[open] pre").first.inner_text()
        page.select_option("#items-order", "reward_desc")
        page.wait_for_function("document.querySelectorAll('details.item').length > 0")
        save_screenshot(page, tmp_path / "dashboard-eval.png")
        assert page.problems == []


def test_label_eval_runs_and_their_comparison(runs_root, page, tmp_path):
    with Server(runs_root / "runs", runs_root / "evals") as server:
        charts = open_view(page, server.url("#/eval/tuned"))
        assert points(charts["chart-pr-labels"], "micro") == 1 and points(charts["chart-pr-labels"], "labels") >= 2
        charts = open_view(page, server.url("#/compare?key=base&key=tuned&key=ftjob-done/evals/step-6"))
        assert points(charts["chart-compare-reward"], "mean reward") == 5  # 3 runs + 2 baselines
        assert len(charts["chart-compare-hist"]["datasets"]) == 3
        assert page.locator("#compare-table tr").count() == 6
        charts = open_view(page, server.url("#/"))
        assert page.locator("#jobs tr").count() == 3 and page.locator("#evals tr").count() == 3
        page.locator("#jobs a", has_text="ftjob-ftjob-done").click()
        page.wait_for_function("!!document.getElementById('chart-pr-trade') && document.body.dataset.ready === '1'")
        charts = {chart["id"]: chart for chart in page.evaluate(READ_CHARTS)}
        # Validation runs at steps 0 (the base model), 2, 4 and 6.
        assert points(charts["chart-pr-trade"], "checkpoints") == 4 and points(charts["chart-pr-steps"], "recall") == 4
        assert points(charts["chart-reward"], "guard warning") == 1
        assert "response_length" in page.locator("#guards").inner_text()
        save_screenshot(page, tmp_path / "dashboard-labels.png")
        assert page.problems == []


def test_a_running_job_updates_live(runs_root, page, tmp_path):
    run = shutil.copytree(runs_root / "runs" / "ftjob-live", tmp_path / "runs" / "ftjob-live")
    lines = [line for line in (run / "events.jsonl").read_text().splitlines() if line.endswith("}")]
    (run / "events.jsonl").write_text("\n".join(lines) + "\n")
    with Server(tmp_path / "runs") as server:
        charts = open_view(page, server.url("#/job/ftjob-live"))
        assert points(charts["chart-reward"], "train") == 3
        assert page.locator("#live").is_visible()
        event = [e for e in map(json.loads, lines) if e.get("type") == "metrics"][-1]
        event["data"] = {**event["data"], "step": 4, "total_steps": 4,
                         "scores": {**event["data"]["scores"], "train_reward_mean": 0.9}}
        with (run / "events.jsonl").open("a") as f:
            f.write(json.dumps(event) + "\n")
        page.wait_for_function("Chart.getChart(document.getElementById('chart-reward')).data.datasets[0].data.length"
                               " === 4", timeout=15000)
        job = json.loads((run / "job.json").read_text())
        (run / "job.json").write_text(json.dumps({**job, "status": "succeeded"}))
        page.wait_for_function("document.getElementById('live').hidden", timeout=15000)
        assert "succeeded" in page.locator("h1").first.inner_text()
        assert page.problems == []
