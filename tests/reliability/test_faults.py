"""Faults: a full disk while a checkpoint is written, and the sandbox pool under resource exhaustion at scale."""

from __future__ import annotations

import errno
import hashlib
import os
import resource

import pytest

from openrft.runs import list_checkpoints
from openrft.training.checkpoints import write_checkpoint


def _tree_digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def tiny_policy(embedded_model):
    """A tiny random Llama with a LoRA adapter (the trainer's policy shape) and the embedded tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from openrft.models import add_lora

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2)
    model = add_lora(LlamaForCausalLM(config), rank=2, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    return model, AutoTokenizer.from_pretrained(embedded_model)


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, tiny_policy, monkeypatch):
    model, tokenizer = tiny_policy
    args = dict(base_model="default", job_id="ftjob-x", checkpoint_model="ft:x", metrics={})
    write_checkpoint(tmp_path, model, tokenizer, step=1, **args)
    first = tmp_path / "checkpoints" / "step-1"
    before = _tree_digest(first)
    real_save = type(model).save_pretrained

    def disk_full(self, directory, *a, **k):  # writes part of the adapter, then the disk is full
        real_save(self, directory, *a, **k)
        for path in list(os.scandir(directory)):
            if path.is_file():
                with open(path.path, "r+b") as handle:
                    handle.truncate(max(0, os.path.getsize(path.path) // 2))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory))

    monkeypatch.setattr(type(model), "save_pretrained", disk_full)
    for step in (2, 1):  # a new checkpoint, and rewriting the existing one in place
        with pytest.raises(OSError) as failure:
            write_checkpoint(tmp_path, model, tokenizer, step=step, **args)
        assert failure.value.errno == errno.ENOSPC and "No space left" in str(failure.value)
        assert _tree_digest(first) == before  # the previous checkpoint is untouched
        assert not (tmp_path / "checkpoints" / "step-2").exists()
        assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-1"]  # no .partial left
        assert [c.step_number for c in list_checkpoints(tmp_path)] == [1]

    monkeypatch.undo()
    from peft import PeftModel
    from transformers import LlamaForCausalLM

    reloaded = PeftModel.from_pretrained(LlamaForCausalLM(model.base_model.model.config), first)
    assert reloaded.peft_config["default"].r == 2


# -- the sandbox at scale ---------------------------------------------------------------------------------
ALLOCATE = ("def grade(sample, item):\n    blocks = []\n    while True:\n"
            "        blocks.append(bytearray(16 * 1024 * 1024))\n")
PRINT_A_LOT = ("import sys\ndef grade(sample, item):\n    line = 'x' * 1023 + '\\n'\n"
               "    for _ in range({n}):\n        sys.stdout.write(line)\n    return 0.25\n")
OK = "def grade(sample, item):\n    return float(item['v'])\n"


def _pool(workers: int):
    from openrft.graders.sandbox import SandboxLimits, SandboxPool, SandboxUnavailable, check_sandbox

    limits = SandboxLimits(wall_time_s=20.0, cpu_time_s=20.0, memory_bytes=384 * 1024**2, grace_s=5.0)
    try:
        check_sandbox(limits)
    except SandboxUnavailable as exc:
        pytest.skip(f"{exc} (scripts/setup_debian.sh installs bubblewrap)")
    return SandboxPool(workers=workers, limits=limits)


def _exhaust(workers: int, graders: int, printed_mib: int):
    host_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with _pool(workers) as pool:
        hogs = pool.run_many(ALLOCATE, [({}, {})] * graders)
        assert all(r.reward is None and r.error in ("runtime", "server") for r in hogs), hogs[:3]
        assert sum(r.error_type == "memory" for r in hogs) >= graders // 2, [r.error_type for r in hogs]
        loud = pool.run(PRINT_A_LOT.format(n=printed_mib * 1024), {}, {})
        assert loud.reward == 0.25 and loud.error is None, loud  # the print is captured (its start kept), not fatal
        served = pool.run_many(OK, [({}, {"v": i / 10}) for i in range(10)])
        assert [r.reward for r in served] == [i / 10 for i in range(10)]
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - host_rss) / 1024
    assert grown_mib < 200, f"the host process grew by {grown_mib:.0f} MiB"


def test_graders_exhausting_memory_and_printing_a_lot(tmp_path):
    """24 graders that allocate until the limit (4 at once) and one printing 64 MiB: the pool keeps serving."""
    _exhaust(workers=4, graders=24, printed_mib=64)


@pytest.mark.slow
def test_100_graders_exhausting_memory_at_once_and_one_printing_a_gigabyte(tmp_path):
    _exhaust(workers=20, graders=100, printed_mib=1024)
