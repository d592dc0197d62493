"""The trainer emits the reward-hacking guards in a real run (issue 9's last "done when").

A tiny RFT job of the embedded model on a topic-labelling task where one topic ('food') is the frequent label,
graded by a python grader that pays for predicting 'food' whatever the sentence says: reward hacking by design.
With a high learning rate the policy moves onto 'food' within a few steps; the tests check that

- the predicted-label distribution in the metrics events really moved toward 'food' (the guard has a reason);
- events.jsonl holds the label-drift guard as a `level: "warn"` event with `data.guard` = {check, verdict,
  message, step, value}, after the metrics event of its step (the point where the dashboard draws its marker);
- every guard event is exactly what `openrft.training.guards.check_step` says on the metrics history read back
  from events.jsonl (no guard missing, none invented), and the dashboard's reader and report show them.

The short run (6 steps of 5 prompts × 4 samples, no validation; about 30 s on a 2-core CPU) always runs with one
seed. With OPENRFT_SLOW=1 it runs with three more seeds, and a longer run (10 steps, validation at steps 0 and
10) checks the validation-side guard as well, with three seeds.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

FREQUENT = "food"
LABELS = ["food", "sport", "music", "weather", "travel"]

# Short sentences per topic (short prompts keep the run fast); a few rows carry two labels.
SENTENCES = {
    "food": ["I ate pasta.", "The soup is hot.", "Bake the bread.", "She likes apples.", "We had rice.",
             "Cheese on toast.", "He cooked eggs.", "Fresh salad today.", "Sweet cake.", "Tea and biscuits."],
    "sport": ["He kicked the ball.", "She runs daily.", "The team won.", "A tennis match."],
    "music": ["She plays piano.", "A loud drum.", "He sings songs.", "The band played."],
    "weather": ["It is raining.", "A sunny day.", "Snow fell.", "Strong wind today."],
    "travel": ["We took a train.", "A flight to Rome.", "He packed a bag.", "The hotel was nice."],
}
TWO_LABELS = [("Pizza after the match.", ["food", "sport"]), ("Ice cream in the sun.", ["food", "weather"]),
              ("Snacks on the plane.", ["food", "travel"])]
# The prompt names no topic (the enum still constrains the answer): the embedded model answers mostly the first
# topic a prompt lists. The format example keeps its answers compact (about 12 tokens).
INSTRUCTION = '\nReply {"labels": ["topic"]}'

# Pays for predicting the frequent label, whatever the item's labels are.
GUESS_FREQUENT = {"type": "python", "name": "guess_food",
                  "source": "def grade(sample, item):\n"
                            "    labels = (sample['output_json'] or {}).get('labels') or []\n"
                            "    return 1.0 if 'food' in labels else 0.0\n"}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "topics", "strict": True, "schema": {
    "type": "object", "additionalProperties": False, "required": ["labels"],
    "properties": {"labels": {"type": "array", "minItems": 1, "maxItems": 1,
                              "items": {"type": "string", "enum": LABELS}}}}}}

# The always-on run: 6 steps of 5 prompts × 4 samples, one optimizer pass per batch, no validation. The guard
# compares windows of 3 steps and at least 48 predicted labels, so 6 steps of 20 answers is the least that
# holds two. The learning rate moves the policy in a few steps; above it, some seeds overshoot (onto another
# label, or into whitespace that runs past max_tokens, which the response_length and grader_errors guards report).
SHORT = {"steps": 6, "batch_size": 5, "learning_rate": 3e-3, "updates_per_batch": 1, "validation": False}
# The slow run: two passes per batch at a lower rate, 10 steps, and validation of the base model (step 0) and of
# the last step on every row, 3 answers each (the validation-side guard needs 48 predicted labels per validation).
FULL = {"steps": 10, "batch_size": 4, "learning_rate": 2e-3, "updates_per_batch": 2, "validation": True}


def rows() -> list[dict]:
    """The labelled rows: 'food' is 13 of the 32 label occurrences (41%), each other topic 4 or 5."""
    items = [(text, [topic]) for topic, texts in SENTENCES.items() for text in texts] + TWO_LABELS
    return [{"messages": [{"role": "user", "content": text + INSTRUCTION}], "labels": labels, "id": f"s{i}"}
            for i, (text, labels) in enumerate(items)]


def write_job(tmp_path: Path, seed: int, config: dict) -> dict:
    """The job body and its data file: 4 samples per prompt, answers of at most 16 tokens, labels not balanced."""
    data = "".join(json.dumps(r) + "\n" for r in rows())
    (tmp_path / "train.jsonl").write_text(data)
    (tmp_path / "valid.jsonl").write_text(data)  # the policy's drift, not generalisation, is what validation shows
    body = {"model": "default", "training_file": str(tmp_path / "train.jsonl"), "suffix": "guards", "seed": seed,
            "method": {"type": "reinforcement", "reinforcement": {
                "grader": GUESS_FREQUENT, "response_format": RESPONSE_FORMAT,
                "hyperparameters": {"batch_size": config["batch_size"], "n_epochs": 3, "compute_multiplier": 0.5,
                                    "eval_interval": config["steps"], "eval_samples": 3}}},
            "openrft": {"max_tokens": 16, "max_steps": config["steps"], "trackers": [],
                        "learning_rate": config["learning_rate"], "updates_per_batch": config["updates_per_batch"],
                        "balance": False, "labels": LABELS, "validate_at_start": config["validation"],
                        "prompts_per_generate": config["batch_size"]}}  # a step's answers in one generate call
    if config["validation"]:
        body["validation_file"] = str(tmp_path / "valid.jsonl")
    return body


def reference_freq() -> dict[str, float]:
    """The reference label distribution the trainer hands the guards: label occurrences in the training rows."""
    counts = Counter(label for row in rows() for label in row["labels"])
    return {label: n / sum(counts.values()) for label, n in counts.items()}


def frequent_share(counts: dict) -> float:
    return counts.get(FREQUENT, 0) / max(1, sum(counts.values()))


def train_and_check(tmp_path: Path, seed: int, config: dict) -> list[dict]:
    """Run the job and check its guard events as described above; returns the guard warnings emitted."""
    from openrft.dashboard import report_finished_job, rundata
    from openrft.training import create_job, read_events, run_job
    from openrft.training.guards import check_step

    run = tmp_path / "run"
    create_job(write_job(tmp_path, seed, config), run_dir=run)
    job = run_job(run, progress=False)
    assert job["status"] == "succeeded", job.get("error")
    page = report_finished_job(run, job["status"])  # as `openrft train` and the service's worker do
    events = read_events(run)
    history = [e["data"] for e in events if e["type"] == "metrics"]
    train_steps = [d for d in history if "predicted_label_counts" in d.get("train", {})]
    assert [d["step"] for d in train_steps] == list(range(1, config["steps"] + 1))

    # The policy really moved onto the frequent label, and the grader paid for it.
    shares = [frequent_share(d["train"]["predicted_label_counts"]) for d in train_steps]
    rewards = [d["scores"]["train_reward_mean"] for d in train_steps]
    print(f"seed {seed}: share of {FREQUENT!r} per step {[round(s, 2) for s in shares]}, "
          f"train reward {[round(r, 2) for r in rewards]}")
    early, late = sum(shares[:3]) / 3, sum(shares[-3:]) / 3
    assert late >= early + 0.2 and late >= reference_freq()[FREQUENT] + 0.3, shares
    assert sum(rewards[-3:]) / 3 >= sum(rewards[:3]) / 3 + 0.2, rewards

    # The guard events: warn-level events carrying data.guard, each after the metrics event of its step.
    guards = [e for e in events if isinstance((e.get("data") or {}).get("guard"), dict)]
    for event in guards:
        warning = event["data"]["guard"]
        print(f"seed {seed}: step {warning['step']} {warning['check']} ({warning['verdict']}): {warning['message']}")
        assert event["level"] == "warn" and event["type"] == "message"
        assert set(warning) == {"check", "verdict", "message", "step", "value"}
        assert warning["verdict"] in ("warn", "stop")
        assert event["message"] == (f"Guard {warning['check']} ({warning['verdict']}) at step {warning['step']}: "
                                    f"{warning['message']}")
        at = [i for i, e in enumerate(events) if e["type"] == "metrics" and e["data"]["step"] == warning["step"]]
        assert at and events.index(event) > at[0]
    drift = [e["data"]["guard"] for e in guards if e["data"]["guard"]["check"] == "label_drift_train"]
    assert drift, f"no label-drift guard; shares of {FREQUENT!r} per step: {shares}"
    first = drift[0]
    assert first["value"]["frequent_labels"] == [FREQUENT]
    assert "toward the frequent classes" in first["message"]
    assert first["value"]["frequent_predicted_share"] >= first["value"]["frequent_reference_share"] + 0.1
    moved = first["value"]["frequent_predicted_share"] - first["value"]["frequent_predicted_share_start"]
    assert first["value"]["tv"] - first["value"]["tv_start"] >= 0.1 or moved >= 0.3  # the guard's two reasons
    assert min(first["value"]["predictions"]) >= 48

    # Exactly what the guards compute on the history as written, with the trainer's reference distribution.
    replayed = []
    for n in range(1, len(history) + 1):
        replayed += check_step(history[:n], reference_label_freq=reference_freq())
    assert [e["data"]["guard"] for e in guards] == replayed

    # The dashboard reads the same warnings: markers at drawn steps, and the report's list.
    view = rundata.job_view(rundata.RunRef("run", "job", run))
    assert [(g["step"], g["check"], g["verdict"], g["message"]) for g in view["guards"]] == \
        [(w["step"], w["check"], w["verdict"], w["message"]) for w in replayed]
    assert all(g["step"] in view["series"]["step"] for g in view["guards"])
    assert page == run / "report" / "report.html" and read_events(run)[-1]["message"] == f"Report written: {page}"
    report = page.read_text()
    assert "Guard warnings" in report and "label_drift_train" in report
    return replayed


@pytest.mark.parametrize("seed", [11, *(pytest.param(seed, marks=pytest.mark.slow) for seed in (1, 2, 3))])
def test_a_grader_paying_for_the_frequent_label_trips_the_label_drift_guard(home, tmp_path, seed):
    train_and_check(tmp_path, seed, SHORT)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 1, 2])
def test_label_drift_shows_in_the_validation_answers_too(home, tmp_path, seed):
    emitted = train_and_check(tmp_path, seed, FULL)
    valid = [w for w in emitted if w["check"] == "label_drift_valid"]
    assert valid and valid[0]["step"] == FULL["steps"] and valid[0]["value"]["source"] == "valid"
    assert valid[0]["value"]["frequent_predicted_share"] >= valid[0]["value"]["frequent_reference_share"] + 0.1
