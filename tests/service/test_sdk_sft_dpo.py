"""The official `openai` SDK creates, watches and uses supervised and DPO jobs against `openrft serve` as it does
RFT jobs (issue 15): SFT first, then DPO starting from the SFT model (`model: "ft:…"`)."""

from __future__ import annotations

import json

import pytest

from tests.service.test_server import wait_for

openai = pytest.importorskip("openai")

QUESTIONS = [("the sea", "Blue."), ("grass", "Green."), ("snow", "White."), ("coal", "Black."), ("blood", "Red.")]
TINY = {"trackers": [], "lora_rank": 4, "learning_rate": 1e-3}


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def sft_row(thing: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": f"What colour is {thing}?"},
                         {"role": "assistant", "content": answer}]}


def dpo_row(thing: str, answer: str) -> dict:
    return {"input": {"messages": [{"role": "user", "content": f"What colour is {thing}?"}]},
            "preferred_output": [{"role": "assistant", "content": answer}],
            "non_preferred_output": [{"role": "assistant", "content": "Purple."}]}


def finished(client, job_id: str):
    job = wait_for(lambda: client.fine_tuning.jobs.retrieve(job_id), lambda j: j.status in ("succeeded", "failed"),
                   timeout=600, what=f"job {job_id} to finish")
    assert job.status == "succeeded", job.error
    return job


def test_sft_then_dpo_from_the_sft_model_through_the_openai_sdk(server):
    client = server.client
    train = client.files.create(file=("sft.jsonl", jsonl([sft_row(*q) for q in QUESTIONS[:4]])), purpose="fine-tune")
    valid = client.files.create(file=("sft_valid.jsonl", jsonl([sft_row(*QUESTIONS[4])])), purpose="fine-tune")
    sft = client.fine_tuning.jobs.create(
        model="default", training_file=train.id, validation_file=valid.id, suffix="sft", seed=1,
        method={"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 2, "n_epochs": 2}}},
        extra_body={"openrft": TINY})
    assert sft.status == "queued" and sft.method.type == "supervised"
    assert sft.method.supervised.hyperparameters.batch_size == 2
    sft = finished(client, sft.id)
    assert sft.fine_tuned_model.startswith("ft:default:openrft:sft:")
    assert sft.hyperparameters.n_epochs == 2

    events = client.fine_tuning.jobs.list_events(sft.id, limit=100).data
    metrics = sorted((e.data for e in events if e.type == "metrics"), key=lambda d: d["step"])
    assert [m["step"] for m in metrics] == [0, 1, 2, 3, 4]
    assert {"train_loss", "train_mean_token_accuracy", "valid_loss", "valid_mean_token_accuracy"} <= set(metrics[1])
    assert "full_valid_loss" in metrics[2] and "full_valid_loss" not in metrics[1]
    checkpoints = client.fine_tuning.jobs.checkpoints.list(sft.id).data
    assert [c.step_number for c in checkpoints] == [4, 2]
    assert checkpoints[0].metrics.full_valid_loss == pytest.approx(metrics[4]["full_valid_loss"])
    assert checkpoints[0].metrics.train_mean_token_accuracy is not None
    results = client.files.content(sft.result_files[0]).text.splitlines()
    assert results[0].startswith("step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy")
    assert len(results) == 1 + len(metrics)

    answer = client.chat.completions.create(model=sft.fine_tuned_model, max_tokens=8, seed=1, messages=[
        {"role": "user", "content": "What colour is the sea?"}])
    assert answer.choices[0].message.content

    pairs = client.files.create(file=("dpo.jsonl", jsonl([dpo_row(*q) for q in QUESTIONS[:4]])), purpose="fine-tune")
    dpo = client.fine_tuning.jobs.create(
        model=sft.fine_tuned_model, training_file=pairs.id, suffix="dpo", seed=2,
        method={"type": "dpo", "dpo": {"hyperparameters": {"batch_size": 2, "n_epochs": 1, "beta": "auto"}}},
        extra_body={"openrft": TINY})
    assert dpo.method.type == "dpo" and dpo.model == sft.fine_tuned_model
    dpo = finished(client, dpo.id)
    assert dpo.method.dpo.hyperparameters.beta == 0.1
    metrics = sorted((e.data for e in client.fine_tuning.jobs.list_events(dpo.id, limit=100).data
                      if e.type == "metrics"), key=lambda d: d["step"])
    assert [m["step"] for m in metrics] == [1, 2]  # no validation file: no step 0
    assert metrics[0]["train_loss"] == pytest.approx(0.6931, abs=1e-3)  # the reference is the SFT model itself
    assert "train_reward_accuracy" in metrics[1]
    assert [c.step_number for c in client.fine_tuning.jobs.checkpoints.list(dpo.id).data] == [2]
    assert {sft.fine_tuned_model, dpo.fine_tuned_model} <= {m.id for m in client.models.list().data}
    assert client.chat.completions.create(model=dpo.fine_tuned_model, max_tokens=4, messages=[
        {"role": "user", "content": "What colour is snow?"}]).choices[0].message.role == "assistant"

    with pytest.raises(openai.BadRequestError) as caught:  # a DPO row without its rejected answer
        no_rejected = {k: v for k, v in dpo_row(*QUESTIONS[0]).items() if k != "non_preferred_output"}
        client.files.create(file=("bad.jsonl", jsonl([no_rejected])), purpose="fine-tune")
    assert "non_preferred_output" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:  # SFT rows in a DPO job
        client.fine_tuning.jobs.create(model="default", training_file=train.id, method={"type": "dpo"})
    assert caught.value.param == "training_file" and "input" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.jobs.create(model="ft:default:openrft:sft:nothere0", training_file=train.id,
                                       method={"type": "supervised"})
    assert caught.value.param == "model"
