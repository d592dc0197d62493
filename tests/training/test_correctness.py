"""What the RL update claims, checked: infrastructure failures stay out of the advantages, a killed and resumed
run is the uninterrupted run, gradients from 2 processes equal those of 1 on the same batch, and jobs that
could only fail later are refused at create time naming the field."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from openrft.training import algorithm
from tests.training.test_train import write_job


def test_infrastructure_failures_are_left_out_of_the_advantages():
    rewards = [1.0, 0.0, 0.0, 0.5]
    adv = algorithm.graded_advantages(rewards, [False, False, True, False], scale=False)
    assert set(adv) == {0, 1, 3}
    mean = (1.0 + 0.0 + 0.5) / 3  # the failed sample's 0 is not part of the group's mean
    assert adv[0] == pytest.approx(1.0 - mean) and adv[1] == pytest.approx(-mean)
    assert algorithm.graded_advantages([1.0, 0.0], [False, True]) is None  # one sample left: no signal
    assert algorithm.graded_advantages([0.2, 0.2, 0.0], [False, False, True]) is None  # zero signal once removed


def test_infrastructure_failures_are_counted_in_a_real_run(home, tmp_path):
    """A python grader whose sandbox process dies on some answers: the job goes on (below the error share),
    the failures are counted in the metrics and do not count as reward-0 answers in the update."""
    from openrft.training import create_job, read_events, run_job

    body = write_job(tmp_path, steps=1, extra={"validate_at_start": False, "max_grader_error_share": 0.9},
                     hp={"compute_multiplier": 0.5})
    body["method"]["reinforcement"]["grader"] = {
        "type": "python", "name": "flaky",
        "source": "import os\ndef grade(sample, item):\n    n = len(sample['output_text'])\n"
                  "    if n % 3 == 0:\n        os._exit(1)\n    return min(1.0, n / 30)\n"}
    create_job(body, run_dir=tmp_path / "run")
    job = run_job(tmp_path / "run", progress=False)
    assert job["status"] == "succeeded", job.get("error")
    data = [e["data"] for e in read_events(tmp_path / "run") if e["type"] == "metrics"][0]
    crashed = data["errors"]["graders"][0]["train_python_grader_server_error_count"]
    assert 0 < crashed < 8  # sampling is seeded: this run's answers crash the grader on some, not all
    assert data["train"]["infrastructure_failures"] == crashed


@pytest.mark.parametrize("extra, hp, rl, field", [
    ({"finetune": "full", "kl_coef": 0.1}, {}, {}, "openrft.kl_coef"),
    ({"max_tokens": 96}, {"reasoning_effort": "high"}, {}, "reasoning_effort"),
    ({}, {}, {"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=a)b"}}}}}},
     "method.reinforcement.response_format"),
])
def test_jobs_that_would_fail_later_are_refused_at_create(tmp_path, extra, hp, rl, field):
    from openrft.spec import JobSpecError
    from openrft.training import create_job

    body = write_job(tmp_path, extra=extra, hp=hp)
    body["method"]["reinforcement"].update(rl)
    with pytest.raises(JobSpecError, match=field.replace(".", r"\.")):
        create_job(body, run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "job.json").exists()


def _adapter(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "checkpoints" / "final" / "adapter_model.safetensors")


def _metrics(run: Path) -> list[tuple]:
    from openrft.training import read_events

    out = []
    for e in read_events(run):
        if e["type"] == "metrics":
            d = e["data"]
            out.append((d["step"], d["scores"].get("train_reward_mean"), d.get("train", {}).get("loss"),
                        d["scores"].get("valid_reward_mean")))
    return out


def test_a_killed_and_resumed_run_is_the_uninterrupted_run(home, tmp_path):
    """Stopped after step 2 (state saved) and resumed, a 4-step run ends with the same adapter weights and the
    same per-step metrics as the same run without the stop."""
    from openrft.training import create_job, run_job

    extra = {"validate_at_start": False}
    hp = {"eval_interval": 2, "n_epochs": 4}
    handler = signal.getsignal(signal.SIGINT)
    create_job(write_job(tmp_path, steps=4, extra=extra, hp=hp), run_dir=tmp_path / "whole")
    whole_job = run_job(tmp_path / "whole", progress=False)
    assert whole_job["status"] == "succeeded", whole_job.get("error")
    assert signal.getsignal(signal.SIGINT) is handler  # the trainer's Ctrl-C handler is gone once it returns

    create_job(write_job(tmp_path, steps=4, extra=extra, hp=hp), run_dir=tmp_path / "split")
    calls = iter([None, None, "interrupt"])
    job = run_job(tmp_path / "split", progress=False, should_stop=lambda: next(calls, None))
    assert job["status"] == "queued", job.get("error")
    resumed = run_job(tmp_path / "split", progress=False)
    assert resumed["status"] == "succeeded", resumed.get("error")

    whole, split = _adapter(tmp_path / "whole"), _adapter(tmp_path / "split")
    assert whole.keys() == split.keys()
    for key in whole:
        assert torch.allclose(whole[key], split[key], atol=1e-6), key
    assert any((whole[k] != 0).any() for k in whole if "lora_B" in k)  # it trained
    a, b = _metrics(tmp_path / "whole"), _metrics(tmp_path / "split")
    assert [m[0] for m in a] == [m[0] for m in b] == [1, 2, 3, 4]
    for x, y in zip(a, b):
        assert x[1] == pytest.approx(y[1], abs=1e-9) and x[2] == pytest.approx(y[2], abs=1e-6)
        assert (x[3] is None and y[3] is None) or x[3] == pytest.approx(y[3], abs=1e-9)


GRADIENT_SCRIPT = r'''
import json, os, sys
import torch
import torch.distributed as td
from openrft.engines.base import SamplingParams
from openrft.engines.transformers import TransformersEngine
from openrft.evals.rollout import Rollout
from openrft.graders.grade import Grade
from openrft.models import add_lora, load_model
from openrft.training.distributed import Distributed
from openrft.training.update import policy_update
from openrft.spec import OpenrftOptions

out = sys.argv[1]
torch.manual_seed(0)
model, tok = load_model("default")
model = add_lora(model, rank=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
engine = TransformersEngine(model, tok)
topics = ["the sea", "bread", "rain", "a cat"]
params = SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=1)
groups = engine.generate([[{"role": "user", "content": f"A word about {t}."}] for t in topics], params)
rollouts = [Rollout(i, {}, samples, [[Grade(reward=len(s.output_text) / 10) for s in samples]])
            for i, samples in enumerate(groups)]
dist = Distributed()
mine = rollouts[dist.rank::dist.world]


class Recorder:
    param_groups = [{"lr": 0.0}]
    def zero_grad(self, set_to_none=True):
        model.zero_grad(set_to_none=True)
    def step(self):
        self.grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


opt = Recorder()
ext = OpenrftOptions(updates_per_batch=1, max_grad_norm=1e9)
policy_update(model, opt, mine, ext, dist, engine)
if dist.rank == 0:
    torch.save(opt.grads, out)
'''


def test_two_processes_compute_the_gradient_of_one(home, tmp_path):
    """The same four groups, split over 2 gloo processes or all in one: the summed, token-normalised gradients
    before the optimizer step are equal."""
    script = tmp_path / "grads.py"
    script.write_text(GRADIENT_SCRIPT)
    env = {**os.environ, "OPENRFT_HOME": str(home), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}  # this checkout's code, not the installed one
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one.pt")], env=env, capture_output=True,
                         text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          "29517", str(script), str(tmp_path / "two.pt")], env=env, capture_output=True, text=True,
                         timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert a.keys() == b.keys() and len(a) > 0
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-7), key
    assert any(a[k].abs().sum() > 0 for k in a)
