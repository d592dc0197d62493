"""The dashboard's HTTP side: the page, its vendored assets and the JSON endpoints over run directories."""

from __future__ import annotations

import re
import shutil

from fastapi import FastAPI
from fastapi.testclient import TestClient
from rundirs import write_job_run

from openrft.dashboard.web import STATIC_DIR, create_app, router


def client_for(*roots) -> TestClient:
    return TestClient(create_app(roots))


def test_the_page_and_its_assets_load_from_the_package_only(runs_root):
    client = client_for(runs_root / "runs")
    assert client.get("/", follow_redirects=False).headers["location"] == "/dashboard/"
    assert client.get("/dashboard", follow_redirects=False).headers["location"] == "/dashboard/"
    page = client.get("/dashboard/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r'(?:src|href)="(static/[^"]+)"', page.text)
    assert set(assets) == {"static/dashboard.css", "static/chart.umd.min.js", "static/dashboard.js"}
    for asset in assets:
        response = client.get("/dashboard/" + asset)
        assert response.status_code == 200 and len(response.content) > 1000
    chart_js = client.get("/dashboard/static/chart.umd.min.js").text
    assert chart_js.startswith("/*!\n * Chart.js v4.") and "Released under the MIT License" in chart_js[:300]
    # Offline: nothing in the page or its script points to another host.
    for name in ("index.html", "dashboard.js", "dashboard.css"):
        assert not re.search(r"https?://", (STATIC_DIR / name).read_text()), name
    assert client.get("/dashboard/static/..%2Fweb.py").status_code == 404
    assert client.get("/dashboard/static/missing.js").status_code == 404


def test_runs_job_eval_items_and_compare_endpoints(runs_root):
    client = client_for(runs_root / "runs", runs_root / "evals")
    runs = client.get("/dashboard/api/runs").json()
    assert {j["key"]: j["status"] for j in runs["jobs"]} == {"ftjob-done": "succeeded", "ftjob-live": "running"}
    assert {e["key"] for e in runs["evals"]} == {"base", "tuned"}
    assert "ftjob-done/evals/step-4" in runs["eval_keys"]
    done = next(j for j in runs["jobs"] if j["key"] == "ftjob-done")
    assert done["task"] == "eurovoc" and done["best_valid_reward"] is not None

    job = client.get("/dashboard/api/job/ftjob-done").json()
    assert job["series"]["step"] == list(range(0, 7)) and job["active"] is False
    step_eval = client.get("/dashboard/api/eval/ftjob-done/evals/step-4").json()
    assert step_eval["parent"] == "ftjob-done" and step_eval["n_output_items"] == 18
    items = client.get("/dashboard/api/items/base", params={"limit": 4, "offset": 2, "status": ""}).json()
    assert items["total"] == 18 and len(items["items"]) == 4 and items["offset"] == 2
    compared = client.get("/dashboard/api/compare", params=[("key", "base"), ("key", "ftjob-done/evals/step-6")]).json()
    assert [r.get("key") for r in compared["runs"][:2]] == ["base", "ftjob-done/evals/step-6"]


def test_errors_name_what_is_wrong(runs_root, tmp_path):
    client = client_for(runs_root / "runs", runs_root / "evals")
    missing = client.get("/dashboard/api/job/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert client.get("/dashboard/api/job/base").status_code == 404  # an eval run is not a job
    assert client.get("/dashboard/api/compare").status_code == 422

    broken = shutil.copytree(runs_root / "runs" / "ftjob-done", tmp_path / "ftjob-broken")
    (broken / "job.json").write_text("{not json")
    response = client_for(tmp_path).get("/dashboard/api/job/ftjob-broken")
    assert response.status_code == 422
    assert "job.json: line 1: not valid JSON" in response.json()["detail"]


def test_the_router_mounted_by_the_service_reads_openrft_home(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENRFT_HOME", str(tmp_path))
    write_job_run(tmp_path / "runs" / "ftjob-home", steps=2, eval_interval=2)
    app = FastAPI()
    app.include_router(router, prefix="/dashboard")
    client = TestClient(app)
    assert [j["key"] for j in client.get("/dashboard/api/runs").json()["jobs"]] == ["ftjob-home"]
    assert client.get("/dashboard/api/job/ftjob-home").json()["series"]["step"] == [0, 1, 2]
    assert client.get("/dashboard/").status_code == 200


def test_dashboard_command_serves_the_given_run_directories(runs_root):
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "openrft", "dashboard", str(runs_root / "evals"),
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                runs = httpx.get(f"http://127.0.0.1:{port}/dashboard/api/runs", timeout=2).json()
                break
            except httpx.TransportError:
                assert process.poll() is None and time.time() < deadline, process.stdout.read()
                time.sleep(0.2)
        assert runs["jobs"] == [] and {e["key"] for e in runs["evals"]} == {"base", "tuned"}
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert f"http://127.0.0.1:{port}/dashboard/" in output and "2 eval run(s)" in output
