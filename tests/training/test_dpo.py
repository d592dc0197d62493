"""DPO (OpenAI's `method.type: "dpo"`, issue 15) on the embedded model: log 2 at the start, the gradient of the
sigmoid loss against a hand computation, a reference that stays the starting model (LoRA off, or a frozen copy
for full fine-tuning), a tiny job that learns the preferences, and refusals of bad rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

PAIRS = [("the sea", "Blue."), ("grass", "Green."), ("snow", "White."), ("coal", "Black."), ("a banana", "Yellow."),
         ("blood", "Red.")]


def dpo_row(thing: str, good: str, bad: str = "Purple.") -> dict:
    return {"input": {"messages": [{"role": "user", "content": f"What colour is {thing}?"}]},
            "preferred_output": [{"role": "assistant", "content": good}],
            "non_preferred_output": [{"role": "assistant", "content": bad}]}


def write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def dpo_job(tmp_path: Path, *, hp: dict | None = None, extra: dict | None = None) -> dict:
    return {"model": "default", "suffix": "dpo", "seed": 5,
            "training_file": write_rows(tmp_path / "train.jsonl", [dpo_row(*p) for p in PAIRS[:4]]),
            "validation_file": write_rows(tmp_path / "valid.jsonl", [dpo_row(*p) for p in PAIRS[4:]]),
            "method": {"type": "dpo", "dpo": {"hyperparameters": {"batch_size": 2, "n_epochs": 2, **(hp or {})}}},
            "openrft": {"learning_rate": 1e-3, "trackers": [], "lora_rank": 8, **(extra or {})}}


@pytest.fixture(scope="module")
def policy(embedded_model):
    """The embedded model with fresh LoRA adapters (B = 0: the policy equals its reference) and the tokenizer."""
    from openrft.models import add_lora, load_model

    model, tokenizer = load_model("default")
    model = add_lora(model, rank=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    return model, tokenizer


def hand_logp(model, encoded):
    """Σ log p(target tokens) from one plain forward over the whole sequence (no logits_to_keep, no batching)."""
    import torch

    ids = torch.tensor([encoded.ids])
    logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    chosen = logp.gather(1, ids[0, 1:].unsqueeze(1)).squeeze(1)
    return chosen[torch.tensor(encoded.targets[1:])].sum()


def test_the_loss_is_log_2_at_the_start_and_its_gradient_matches_a_hand_computation(policy):
    """At the start π = π_ref, so loss = log 2 and ∂loss/∂θ = −β/2 (∇ log π(y_w) − ∇ log π(y_l)) for one pair."""
    import torch

    from openrft.training.dpo import DpoObjective, encode_pair

    model, tokenizer = policy
    beta = 0.3
    pair = encode_pair(tokenizer, dpo_row("the sea", "Blue, like the sky.", "Purple."))
    objective = DpoObjective(beta)
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    metrics = objective.batch(model, [pair], train=True)
    assert metrics["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert metrics["reward_margin"] == pytest.approx(0.0, abs=1e-6) and metrics["reward_accuracy"] == 0.0
    got = [p.grad.clone() for p in params]

    # the reference log-probabilities are those of the same model with its adapters off, i.e. equal here
    with torch.no_grad(), model.disable_adapter():
        ref = (float(hand_logp(model, pair.chosen)), float(hand_logp(model, pair.rejected)))
    assert pair.reference == pytest.approx(ref, rel=1e-5)
    assert metrics["chosen_logp"] == pytest.approx(ref[0], rel=1e-5)

    for p in params:
        p.grad = None
    (-beta / 2 * (hand_logp(model, pair.chosen) - hand_logp(model, pair.rejected))).backward()
    want = [p.grad.clone() for p in params]
    assert max(float(w.abs().max()) for w in want) > 0  # lora_B's gradient is not zero
    for g, w in zip(got, want):
        assert torch.allclose(g, w, atol=1e-6, rtol=1e-4)
    for p in params:
        p.grad = None


def test_the_loss_and_gradient_away_from_the_start_match_the_formula(policy):
    """With the reference fixed to other numbers: loss = −log σ(β((π_w − r_w) − (π_l − r_l))) per pair, batch mean."""
    import torch

    from openrft.training.dpo import DpoObjective, encode_pair

    model, tokenizer = policy
    beta = 0.1
    pairs = [encode_pair(tokenizer, dpo_row(*PAIRS[0])), encode_pair(tokenizer, dpo_row(*PAIRS[1]))]
    pairs[0].reference, pairs[1].reference = (-3.0, -9.0), (-20.0, -1.0)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    metrics = DpoObjective(beta).batch(model, pairs, train=True)
    got = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    losses = [-torch.nn.functional.logsigmoid(beta * ((hand_logp(model, q.chosen) - q.reference[0])
                                                      - (hand_logp(model, q.rejected) - q.reference[1])))
              for q in pairs]
    (sum(losses) / 2).backward()
    assert metrics["loss"] == pytest.approx(float(sum(losses).detach() / 2), rel=1e-5)
    for g, p in zip(got, params):
        assert torch.allclose(g, p.grad, atol=1e-6, rtol=1e-4)
        p.grad = None


def test_a_tiny_dpo_job_learns_the_preferences(home, tmp_path):
    from openrft.training import create_job, list_checkpoints, read_events, run_job

    job = create_job(dpo_job(tmp_path, hp={"n_epochs": 3}), run_dir=tmp_path / "run")
    hp = job["method"]["dpo"]["hyperparameters"]
    assert hp["beta"] == 0.1 and hp["resolved"]["rules"]["beta"] == "0.1"  # "auto"
    job = run_job(tmp_path / "run", progress=False)
    assert job["status"] == "succeeded", job.get("error")
    metrics = [e["data"] for e in read_events(tmp_path / "run") if e["type"] == "metrics"]
    assert [m["step"] for m in metrics] == list(range(7))
    assert metrics[0]["full_valid_loss"] == pytest.approx(math.log(2), abs=1e-6)  # policy == reference
    assert metrics[1]["train_loss"] == pytest.approx(math.log(2), abs=1e-6)  # before the first update
    for key in ("train_reward_accuracy", "train_reward_margin", "valid_loss", "valid_reward_accuracy"):
        assert key in metrics[1]
    assert metrics[-1]["train_loss"] < 0.5 * math.log(2)
    assert metrics[-1]["full_valid_reward_accuracy"] == 1.0 and metrics[-1]["full_valid_reward_margin"] > 0
    assert sorted(c["step_number"] for c in list_checkpoints(tmp_path / "run")) == [2, 4, 6]


def test_full_fine_tuning_keeps_a_frozen_copy_as_the_reference(home, tmp_path, tiny_base):
    """On the tiny Llama: a full fine-tune of the embedded model writes 2.6 GB (two model copies, the optimizer and
    the trainable state), the tiny one a few MB; the frozen reference is the same code either way."""
    from openrft.training import create_job, read_events, run_job

    body = {**dpo_job(tmp_path, extra={"finetune": "full", "learning_rate": 1e-3, "max_steps": 2,
                                       "validate_at_start": False}), "model": str(tiny_base)}
    job = run_job(create_job(body, run_dir=tmp_path / "run")["openrft"]["run_dir"], progress=False)
    assert job["status"] == "succeeded", job.get("error")
    metrics = [e["data"] for e in read_events(tmp_path / "run") if e["type"] == "metrics"]
    assert metrics[0]["train_loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert metrics[1]["train_loss"] < math.log(2)  # the policy moved; the reference did not
    assert (tmp_path / "run" / "checkpoints" / "final" / "config.json").is_file()  # a whole model, not an adapter


@pytest.mark.parametrize("row, field", [
    ({"input": {"messages": [{"role": "user", "content": "Hi"}]},
      "preferred_output": [{"role": "assistant", "content": "Yo"}]}, "non_preferred_output"),
    ({"input": {"messages": [{"role": "user", "content": "Hi"}]}, "preferred_output": [],
      "non_preferred_output": [{"role": "assistant", "content": "Yo"}]}, "preferred_output"),
    ({"preferred_output": [{"role": "assistant", "content": "A"}],
      "non_preferred_output": [{"role": "assistant", "content": "B"}]}, "input"),
    ({"input": {"messages": [{"role": "user", "content": "Hi"}]},
      "preferred_output": [{"role": "user", "content": "A"}],
      "non_preferred_output": [{"role": "assistant", "content": "B"}]}, "preferred_output[0].role"),
])
def test_dpo_rows_missing_an_output_are_refused_at_create_time(tmp_path, row, field):
    from openrft.data import DatasetError
    from openrft.training import create_job

    body = dpo_job(tmp_path)
    write_rows(tmp_path / "train.jsonl", [dpo_row(*PAIRS[0]), dpo_row(*PAIRS[1]), row])
    with pytest.raises(DatasetError) as caught:
        create_job(body, run_dir=tmp_path / "run")
    assert [(p.line, p.field) for p in caught.value.problems] == [(3, field)]
    assert not (tmp_path / "run").exists()
