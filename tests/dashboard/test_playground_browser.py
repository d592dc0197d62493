"""The playground in a real browser (headless Chromium driven by Playwright), on the checkpoints of a real
training run of the embedded model: a validation item is sent to the base model and the checkpoints side by
side with the job's response_format, and each column shows its answer graded by the job's grader."""

from __future__ import annotations

import json
import shutil

from test_dashboard_browser import Server, browser, page  # noqa: F401  (fixtures; the module skips without Chromium)
from test_playground_api import GRADER, RESPONSE_FORMAT, ROWS


def test_a_validation_item_answered_side_by_side_and_graded_live(real_job, page, tmp_path):  # noqa: F811
    run = shutil.copytree(real_job, tmp_path / "runs" / "ftjob-play")
    valid = run / "mood.jsonl"
    valid.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    job = json.loads((run / "job.json").read_text())
    job["method"]["reinforcement"].update(grader=GRADER, response_format=RESPONSE_FORMAT)
    job["openrft"]["validation_path"] = str(valid)
    (run / "job.json").write_text(json.dumps(job))
    with Server(tmp_path / "runs") as server:
        page.goto(server.url("#/job/ftjob-play"))
        page.wait_for_function("document.body.dataset.ready === '1'", timeout=20000)
        page.locator("a.playground-link").click()
        page.wait_for_function("location.hash.startsWith('#/playground/') && document.body.dataset.ready === '1'"
                               " && !!document.getElementById('pg-run')", timeout=20000)
        models = page.locator("input.pg-model")
        ids = [models.nth(i).get_attribute("value") for i in range(models.count())]
        assert ids[0] == "base" and "final" in ids and any(i.startswith("step-") for i in ids)
        for i in range(models.count()):
            models.nth(i).check()
        page.select_option("#pg-item", "1")
        assert page.input_value("#pg-prompt") == ROWS[1]["messages"][-1]["content"]
        page.fill("#pg-max-tokens", "16")
        page.click("#pg-run")
        page.wait_for_function(f"document.querySelectorAll('.answer[data-state=done]').length === {len(ids)}",
                               timeout=300000)
        for model_id in ids:
            card = page.locator(f".answer[data-model='{model_id}']")
            answer = json.loads(card.locator("pre.output").inner_text())  # the job's response_format: valid JSON
            assert answer["mood"] in ("happy", "sad")
            expected = 1 if answer["mood"] == ROWS[1]["mood"] else 0
            assert card.locator(".reward").inner_text() == str(expected)  # graded by the job's string_check
        page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)
        assert page.problems == []
