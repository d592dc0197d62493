"""Two data-parallel training processes on this CPU (gloo): the job finishes with one event per step."""

import json
import os
import subprocess
import sys

from tests.training.test_train import write_job


def test_two_process_training_run(home, tmp_path):
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(write_job(tmp_path, steps=2, extra={"validate_at_start": False,
                                                                       "output_dir": str(tmp_path / "run")})))
    env = {**os.environ, "OPENRFT_HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "openrft", "train", str(job_file), "--processes", "2"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job = json.loads((tmp_path / "run" / "job.json").read_text())
    assert job["status"] == "succeeded"
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    metrics = [e["data"] for e in events if e["type"] == "metrics"]
    assert [m["step"] for m in metrics] == [1, 2]
    # Both processes sampled: each step saw batch_size (2) prompts × group size (2) samples.
    assert all(m["train"]["groups"] == 2 for m in metrics)
    assert (tmp_path / "run" / "checkpoints" / "final" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "run" / "report" / "report.html").is_file()  # written by `openrft train` after the workers
    assert events[-1]["message"] == f"Report written: {tmp_path / 'run' / 'report' / 'report.html'}"
