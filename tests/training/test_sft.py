"""Supervised fine-tuning (OpenAI's `method.type: "supervised"`, issue 15) on the embedded model: the loss mask is
exactly the assistant tokens, the loss is the model's own cross-entropy, it falls over a few steps, events and
checkpoints carry OpenAI's SFT names, bad input is refused at create time, and a job can start from a
fine-tuned model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

COLOURS = [("the sea", "Blue."), ("grass", "Green."), ("snow", "White."), ("coal", "Black."), ("a banana", "Yellow."),
           ("blood", "Red.")]


def sft_row(thing: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": f"What colour is {thing}?"},
                         {"role": "assistant", "content": answer}]}


def write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def sft_job(tmp_path: Path, *, model: str = "default", hp: dict | None = None, extra: dict | None = None) -> dict:
    return {"model": model, "suffix": "sft", "seed": 3,
            "training_file": write_rows(tmp_path / "train.jsonl", [sft_row(*p) for p in COLOURS[:4]]),
            "validation_file": write_rows(tmp_path / "valid.jsonl", [sft_row(*p) for p in COLOURS[4:]]),
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 2, "n_epochs": 2,
                                                                                **(hp or {})}}},
            "openrft": {"learning_rate": 1e-3, "trackers": [], "lora_rank": 8, **(extra or {})}}


@pytest.fixture(scope="module")
def tokenizer(embedded_model):
    from openrft.models import load_tokenizer

    return load_tokenizer("default")


def targets_text(tokenizer, encoded) -> str:
    return tokenizer.decode([t for t, on in zip(encoded.ids, encoded.targets) if on])


def test_the_loss_mask_is_exactly_the_assistant_tokens_and_skips_weight_0(tokenizer):
    from openrft.training.sft import encode_sft_row

    row = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Hello there!", "weight": 0},
                        {"role": "user", "content": "Name a colour."},
                        {"role": "assistant", "content": [{"type": "text", "text": "Blue, "}, {"type": "text",
                                                                                            "text": "like the sea."}]}]}
    encoded = encode_sft_row(tokenizer, row)
    text = tokenizer.decode(encoded.ids)
    assert "Hello there!" in text and "Be brief." in text  # weight 0 and the rest stay in the context
    # exactly the trained answer and its end-of-turn token: the same ids the tokenizer gives that text alone
    answer = [t for t, on in zip(encoded.ids, encoded.targets) if on]
    assert answer == tokenizer("Blue, like the sea.<|im_end|>", add_special_tokens=False)["input_ids"]
    # the targets are one contiguous run at the end, before the template's trailing newline
    on = [i for i, flag in enumerate(encoded.targets) if flag]
    assert on == list(range(on[0], on[-1] + 1)) and on[-1] == len(encoded.ids) - 2

    row["messages"][2]["weight"] = 1  # both assistant turns trained on
    both = targets_text(tokenizer, encode_sft_row(tokenizer, row))
    assert both == "Hello there!<|im_end|>Blue, like the sea.<|im_end|>"


def test_developer_messages_and_tool_rows_follow_the_template(tokenizer):
    from openrft.training.sft import EncodingError, encode_sft_row

    row = {"messages": [{"role": "developer", "content": "Answer in one word."}, {"role": "user", "content": "Sky?"},
                        {"role": "assistant", "content": "Blue."}]}
    encoded = encode_sft_row(tokenizer, row)
    assert tokenizer.decode(encoded.ids).startswith("<|im_start|>system\nAnswer in one word.")  # no default prompt
    assert targets_text(tokenizer, encoded) == "Blue.<|im_end|>"
    calls = {"messages": [{"role": "user", "content": "Weather in Oslo?"},
                          {"role": "assistant", "content": None, "tool_calls": [
                              {"id": "c1", "type": "function", "function": {"name": "weather",
                                                                            "arguments": "{\"city\": \"Oslo\"}"}}]}]}
    with pytest.raises(EncodingError, match=r"messages\[1\].tool_calls: this model's chat template does not render"):
        encode_sft_row(tokenizer, calls, "train.jsonl:7")


TOOL_TEMPLATE = (  # a ChatML template that renders tools and tool calls (the embedded model's does not)
    "{% if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.tool_calls %}{% for c in m.tool_calls %}"
    "<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}{% else %}{{ m.content }}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def test_tool_calls_are_trained_on_with_a_template_that_renders_them(embedded_model):
    from openrft.models import load_tokenizer
    from openrft.training.sft import encode_sft_row

    tokenizer = load_tokenizer("default")
    tokenizer.chat_template = TOOL_TEMPLATE
    call = {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}
    row = {"messages": [{"role": "user", "content": "Weather in Oslo?"},
                        {"role": "assistant", "content": None,
                         "tool_calls": [{"id": "c1", "type": "function", "function": call}]},
                        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                        {"role": "assistant", "content": "Sunny."}],
           "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]}
    encoded = encode_sft_row(tokenizer, row)
    assert "Tools: [" in tokenizer.decode(encoded.ids) and "sunny" in tokenizer.decode(encoded.ids)
    assert targets_text(tokenizer, encoded) == \
        f"<tool_call>{json.dumps(call)}</tool_call><|im_end|>Sunny.<|im_end|>"


def test_the_sft_loss_is_the_models_own_cross_entropy_on_the_targets(embedded_model, tokenizer):
    """Against transformers' loss with labels -100 outside the targets: the same number for one row, and the
    token-weighted mean of the rows for a batch (every target token counts the same)."""
    import torch

    from openrft.models import load_model
    from openrft.training.sft import SupervisedObjective, encode_sft_row

    model, _ = load_model("default")
    model.eval()
    rows = [sft_row("the sea", "Blue, mostly."), sft_row("snow", "White.")]
    encoded = [encode_sft_row(tokenizer, r) for r in rows]
    hand_sums, counts = [], []
    with torch.no_grad():
        for e in encoded:
            ids = torch.tensor([e.ids])
            labels = torch.where(torch.tensor([e.targets]), ids, torch.full_like(ids, -100))
            loss = model(input_ids=ids, labels=labels).loss
            hand_sums.append(float(loss) * e.n_targets)
            counts.append(e.n_targets)
    objective = SupervisedObjective()
    one = objective.batch(model, encoded[:1], train=False)
    assert one["loss"] == pytest.approx(hand_sums[0] / counts[0], rel=1e-5)
    both = objective.batch(model, encoded, train=False)
    assert both["loss"] == pytest.approx(sum(hand_sums) / sum(counts), rel=1e-5)
    assert both["target_tokens"] == sum(counts)
    assert 0.0 <= both["mean_token_accuracy"] <= 1.0


def test_a_tiny_sft_job_lowers_its_loss_and_writes_openai_objects(home, tmp_path):
    from openrft.training import create_job, list_checkpoints, read_events, run_job

    job = create_job(sft_job(tmp_path, hp={"n_epochs": 3}), run_dir=tmp_path / "run")
    hp = job["method"]["supervised"]["hyperparameters"]
    assert (hp["batch_size"], hp["n_epochs"], hp["resolved"]["total_steps"]) == (2, 3, 6)
    assert set(job["method"]) == {"type", "supervised"} and job["eval_id"] is None
    job = run_job(tmp_path / "run", progress=False)
    assert job["status"] == "succeeded", job.get("error")
    assert job["fine_tuned_model"].startswith("ft:default:openrft:sft:") and job["trained_tokens"] > 0

    metrics = [e["data"] for e in read_events(tmp_path / "run") if e["type"] == "metrics"]
    assert [m["step"] for m in metrics] == [0, 1, 2, 3, 4, 5, 6]
    for m in metrics[1:]:
        assert {"train_loss", "train_mean_token_accuracy", "valid_loss", "valid_mean_token_accuracy"} <= set(m)
    # full validation at the end of every epoch (2 steps) and at step 0
    assert [m["step"] for m in metrics if "full_valid_loss" in m] == [0, 2, 4, 6]
    losses = [m["train_loss"] for m in metrics[1:]]
    assert sum(losses[-2:]) / 2 < 0.5 * sum(losses[:2]) / 2, losses  # the rows are learnt
    assert metrics[-1]["train_mean_token_accuracy"] > metrics[1]["train_mean_token_accuracy"]

    checkpoints = list_checkpoints(tmp_path / "run")
    assert sorted(c["step_number"] for c in checkpoints) == [2, 4, 6]
    assert {"step", "train_loss", "train_mean_token_accuracy", "valid_loss", "valid_mean_token_accuracy",
            "full_valid_loss", "full_valid_mean_token_accuracy"} == set(checkpoints[0]["metrics"])
    from openrft.models import load_model

    model, _ = load_model(job["fine_tuned_model"])
    assert model.peft_config

    from openrft.dashboard.rundata import discover, job_view  # the dashboard charts the losses

    [view] = [job_view(ref) for ref in discover([tmp_path]).values() if ref.path == tmp_path / "run"]
    assert view["method"] == "supervised" and view["series"]["train"]["train_loss"][1:] == losses


def test_pause_then_resume_finishes_with_continuous_events(home, tmp_path):
    from openrft.training import create_job, list_checkpoints, read_events, run_job

    create_job(sft_job(tmp_path, extra={"validate_at_start": False}), run_dir=tmp_path / "run")
    calls = iter([None, "pause"])
    job = run_job(tmp_path / "run", should_stop=lambda: next(calls, None), progress=False)
    assert job["status"] == "paused"
    assert [c["step_number"] for c in list_checkpoints(tmp_path / "run")] == [1]
    job = run_job(tmp_path / "run", progress=False)
    assert job["status"] == "succeeded", job.get("error")
    steps = [e["data"]["step"] for e in read_events(tmp_path / "run") if e["type"] == "metrics"]
    assert steps == [1, 2, 3, 4]


@pytest.mark.parametrize("rows, field", [
    ([{"messages": [{"role": "user", "content": "Hi"}]}], "messages"),  # no assistant target
    ([{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo", "weight": 0}]}],
     "messages"),  # every assistant message has weight 0
    ([{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo", "weight": 2}]}],
     "messages[1].weight"),
])
def test_sft_rows_without_a_target_are_refused_at_create_time_naming_line_and_field(tmp_path, rows, field):
    from openrft.data import DatasetError
    from openrft.training import create_job

    body = sft_job(tmp_path)
    write_rows(tmp_path / "train.jsonl", [sft_row(*COLOURS[0])] + rows)
    with pytest.raises(DatasetError) as caught:
        create_job(body, run_dir=tmp_path / "run")
    assert [(p.line, p.field) for p in caught.value.problems] == [(2, field)]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("method, param", [
    ({"type": "supervised", "dpo": {"hyperparameters": {"beta": 0.1}}}, "method.dpo"),
    ({"type": "dpo", "supervised": {}}, "method.supervised"),
    ({"type": "supervised", "reinforcement": {"grader": {"type": "string_check"}}}, "method.reinforcement"),
    ({"type": "reinforcement"}, "method.reinforcement"),
    ({"type": "supervised", "supervised": {"hyperparameters": {"beta": 0.1}}}, "beta"),
])
def test_a_method_block_that_does_not_match_the_type_is_refused(tmp_path, method, param):
    from openrft.spec import JobSpecError
    from openrft.training import create_job

    body = sft_job(tmp_path)
    body["method"] = method
    with pytest.raises(JobSpecError, match=param.replace(".", r"\.")) as caught:
        create_job(body, run_dir=tmp_path / "run")
    if param.startswith("method."):
        assert caught.value.param == param


def test_a_missing_fine_tuned_model_is_refused_naming_the_field(home, tmp_path):
    from openrft.spec import JobSpecError
    from openrft.training import create_job

    with pytest.raises(JobSpecError, match=r"^model: fine-tuned model 'ft:default:openrft:x:deadbeef' not found") as c:
        create_job(sft_job(tmp_path, model="ft:default:openrft:x:deadbeef"), run_dir=tmp_path / "run")
    assert c.value.param == "model"
    with pytest.raises(JobSpecError, match=r"^model: model not found"):
        create_job(sft_job(tmp_path, model=str(tmp_path / "no-such-checkpoint")), run_dir=tmp_path / "run")


def test_a_job_starts_from_a_fine_tuned_model_merged_into_its_base(home, tmp_path):
    """SFT, then SFT again from `ft:…` of the first: the second starts from the first's weights (its step-0
    validation loss is the first's final one), trains a fresh adapter over them, and its model loads back as the
    chain base → adapter 1 (merged) → adapter 2."""
    import torch

    from openrft.models import load_model, load_start_model
    from openrft.training import create_job, read_events, run_job

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run_job(create_job(sft_job(tmp_path / "a"), run_dir=tmp_path / "run-a")["openrft"]["run_dir"],
                    progress=False)
    assert first["status"] == "succeeded", first.get("error")
    body = sft_job(tmp_path / "b", model=first["fine_tuned_model"], hp={"n_epochs": 1})
    body["suffix"] = "second"
    second = run_job(create_job(body, run_dir=tmp_path / "run-b")["openrft"]["run_dir"], progress=False)
    assert second["status"] == "succeeded", second.get("error")
    assert second["fine_tuned_model"].startswith("ft:default:openrft:second:")  # named after the chain's base
    assert (tmp_path / "run-b" / "checkpoints" / "final" / "openrft_base_model.txt").read_text() == \
        first["fine_tuned_model"]

    first_events = [e["data"] for e in read_events(tmp_path / "run-a") if e["type"] == "metrics"]
    second_events = [e["data"] for e in read_events(tmp_path / "run-b") if e["type"] == "metrics"]
    assert second_events[0]["step"] == 0  # the same validation rows, scored by the starting model
    assert second_events[0]["full_valid_loss"] == pytest.approx(first_events[-1]["full_valid_loss"], rel=1e-4)

    ids = torch.tensor([[1, 2, 3, 4, 5]])
    start, _ = load_start_model(first["fine_tuned_model"])
    tuned, _ = load_model(first["fine_tuned_model"])
    chained, _ = load_model(second["fine_tuned_model"])
    with torch.no_grad():
        a, b, c = (m.eval()(input_ids=ids).logits for m in (start, tuned, chained))
    merge_error, change = float((a - b).abs().max()), float((a - c).abs().max())
    assert merge_error < 5e-3  # merging keeps the fine-tuned model's outputs (float32 rounding at logits ~20)
    assert change > 20 * merge_error and math.isfinite(change)  # the second job's adapter changed them


@pytest.mark.parametrize("n_train, batch_size, n_epochs", [(10, 1, 10), (1000, 2, 3), (20000, 40, 1), (3, 1, 25)])
def test_auto_hyperparameters_follow_openais_rules(n_train, batch_size, n_epochs):
    from openrft.spec import parse_job
    from openrft.training import hyperparams

    for kind in ("supervised", "dpo"):
        spec = parse_job({"model": "default", "training_file": "t.jsonl", "method": {"type": kind}})
        res = hyperparams.resolve(spec, n_train)
        assert (res["batch_size"], res["n_epochs"], res["learning_rate_multiplier"]) == (batch_size, n_epochs, 1.0)
        steps = math.ceil(n_train / batch_size)
        assert res["resolved"]["total_steps"] == steps * n_epochs and res["resolved"]["eval_interval"] == steps
        assert ("beta" in res) == (kind == "dpo") and res.get("beta", 0.1) == 0.1


def test_the_example_job_files_are_valid(home):
    """examples/eurovoc/sft.yaml takes SFT rows made from the task's references; dpo.yaml reads a preferences file."""
    from openrft.data import load_rows
    from openrft.spec import parse_job

    examples = Path(__file__).resolve().parents[2] / "examples" / "eurovoc"
    spec = parse_job(examples / "sft.yaml")
    assert spec.method.type == "supervised" and spec.method.supervised.hyperparameters.batch_size == 4
    rows = load_rows(spec.training_file, method="supervised")
    answer = json.loads(rows[0]["messages"][-1]["content"])
    assert set(answer) == {"labels"} and 1 <= len(answer["labels"]) <= 5
    assert load_rows(spec.validation_file, method="supervised")
    spec = parse_job(examples / "dpo.yaml")
    assert spec.method.type == "dpo" and spec.training_file.endswith("data/eurovoc/preferences.jsonl")
