"""Tasks: prompt + response_format + grader + loader, exported as OpenAI RFT files (issue 4, item 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openrft.cli import app
from openrft.data import check_file, label_counts, load_rows, write_rows
from openrft.tasks import TaskError, default_task, eurovoc, eurovoc_offline, get_task, list_tasks
from openrft.tasks.base import prompt_tokenizer
from openrft.tasks.eurovoc import DOMAIN_BY_CODE

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def eurovoc_rows(shared_data, embedded_model):
    task = get_task("eurovoc")
    return task.rows("train"), task.rows("validation")


def test_the_registry():
    names = [info["name"] for info in list_tasks()]
    assert names == ["eurovoc", "eurovoc-offline", "gsm8k", "unfair-tos"]
    with pytest.raises(TaskError, match="unknown task 'mnist'"):
        get_task("mnist")
    with pytest.raises(TaskError, match="unknown split 'test'"):
        get_task("eurovoc-offline").rows("test")
    with pytest.raises(TaskError, match="unknown option"):
        get_task("eurovoc-offline").rows("train", max_prompt_tokens=3)


@pytest.mark.parametrize("name", ["eurovoc", "eurovoc-offline", "unfair-tos"])
def test_classification_tasks_share_one_shape(name):
    task = get_task(name)
    schema = task.response_format["json_schema"]
    assert task.response_format["type"] == "json_schema" and schema["strict"] is True
    assert schema["schema"]["properties"]["labels"]["items"]["enum"] == task.labels
    assert schema["schema"]["required"] == ["labels"] and schema["schema"]["additionalProperties"] is False
    grader = task.grader
    assert grader["type"] in ("multi", "python") and grader["name"] == "multilabel_f1"
    assert 'item.get("labels")' in json.dumps(grader) or "item['labels']" in json.dumps(grader)
    assert task.reasoning_effort is None and task.label_key == "labels"


def test_domains_match_the_data_folder(shared_data):
    assert eurovoc.labels_file_domains(shared_data / "eurovoc") == eurovoc.DOMAINS


def test_eurovoc_rows(eurovoc_rows, shared_data):
    train, validation = eurovoc_rows
    assert (len(train), len(validation)) == (248, 320)
    assert not {r["celex_id"] for r in train} & {r["celex_id"] for r in validation}
    tokenizer = eurovoc.prompt_tokenizer()
    for row in train + validation:
        prompt = row["messages"][0]["content"]
        assert [m["role"] for m in row["messages"]] == ["user"]
        assert all(f"- {name}\n" in prompt for name in eurovoc.DOMAIN_NAMES)
        assert f"written in {eurovoc.LANGUAGES[row['language']]};" in prompt and '{"labels": [' in prompt
        assert row["prompt_tokens"] == len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) <= 384
        assert set(row["labels"]) <= set(eurovoc.DOMAIN_NAMES) and row["labels"]
        assert "text" not in row and {"celex_id", "language", "id", "label_codes"} <= set(row)
    # An act that fits is in the prompt whole; one that does not is cut by tokens and marked.
    source = {r["id"]: r for r in map(json.loads, open(shared_data / "eurovoc" / "train.jsonl"))}
    for row in train:
        prompt, text = row["messages"][0]["content"], source[row["id"]]["text"]
        assert row["labels"] == source[row["id"]]["labels"]
        assert row["text_tokens"] == len(tokenizer(text, add_special_tokens=False)["input_ids"])
        if row["text_tokens"] + 200 <= 384:
            assert prompt.endswith("Act:\n" + text) and row["truncated"] == row["source_truncated"]
        if row["text_tokens"] > 384:
            assert row["truncated"] and text not in prompt and prompt.endswith(" [...]")


def test_longer_prompt_budget_cuts_less(shared_data, embedded_model):
    short = get_task("eurovoc").rows("train", limit=40, max_prompt_tokens=256)
    long = get_task("eurovoc").rows("train", limit=40, max_prompt_tokens=1024, languages=None)
    assert sum(r["truncated"] for r in long) < sum(r["truncated"] for r in short)
    assert max(r["prompt_tokens"] for r in long) <= 1024 and max(r["prompt_tokens"] for r in short) <= 256
    with pytest.raises(TaskError, match="leaves .* tokens for the act"):
        get_task("eurovoc").rows("train", limit=1, max_prompt_tokens=100)
    only_de = get_task("eurovoc").rows("validation", languages=["de"])
    assert only_de and {r["language"] for r in only_de} == {"de"}


def test_the_described_prompt_variant(shared_data, embedded_model):
    """`prompt="described"`: each domain with six EuroVoc terms of its own (taken from the thesaurus, so the
    terms of a domain belong to it), instructions identical for every act up to the act's language, and the
    variant's own budget; same labels, ids and order as the short prompt, so the two compare item by item."""
    from openrft.tasks.eurovoc_offline import descriptors, domain_terms

    task = get_task("eurovoc")
    assert task.prompts == ("short", "described")
    short = task.rows("validation", limit=12)
    described = task.rows("validation", limit=12, prompt="described")
    assert [r["id"] for r in described] == [r["id"] for r in short]
    assert [r["labels"] for r in described] == [r["labels"] for r in short]
    domain_of = {d["label"]: DOMAIN_BY_CODE[d["mt"][:2]] for d in descriptors()}
    terms = domain_terms()
    assert set(terms) == set(eurovoc.DOMAIN_NAMES)
    for name, chosen in terms.items():
        assert len(chosen) == 6 and len(set(chosen)) == 6
        assert all(domain_of[t] == name for t in chosen), (name, chosen)
    prefixes = set()
    for row in described:
        prompt = row["messages"][0]["content"]
        head, _, tail = prompt.partition("The act is written in ")
        prefixes.add(head)
        assert tail.startswith(eurovoc.LANGUAGES[row["language"]] + ";")
        assert all(f"- {name}: {', '.join(terms[name])}\n" in head for name in eurovoc.DOMAIN_NAMES)
        assert row["prompt_tokens"] <= eurovoc.default_max_prompt_tokens("described", prompt_tokenizer())
    assert len(prefixes) == 1  # one shared instruction block: computed once per step by a prefix cache
    # the variants differ in their instructions only: each shows as much of the act (give or take a seam token)
    acts = [(s["messages"][0]["content"].partition("Act:\n")[2], d["messages"][0]["content"].partition("Act:\n")[2])
            for s, d in zip(short, described)]
    assert all(abs(len(a) - len(b)) <= 8 for a, b in acts), [(len(a), len(b)) for a, b in acts]
    with pytest.raises(TaskError, match="unknown prompt 'long'"):
        task.rows("validation", limit=1, prompt="long")


def test_multi_eurlex_layout_reads_like_the_jsonl_layout(shared_data, tmp_path, embedded_model):
    records = eurovoc.read_acts(shared_data / "eurovoc" / "validation.jsonl")
    acts: dict[str, dict] = {}
    for r in records:
        if r["source"] != "multi_eurlex":
            continue
        act = acts.setdefault(r["celex_id"], {"celex_id": r["celex_id"], "publication_date": r["publication_date"],
                                              "eurovoc_concepts": {"level_1": r["label_ids"]}, "text": {}})
        act["text"][r["language"]] = r["text"]
    path = write_rows(list(acts.values()), tmp_path / "multi_eurlex.jsonl")
    again = {r["id"]: r for r in eurovoc.read_acts(path)}
    originals = {r["id"]: r for r in records if r["source"] == "multi_eurlex"}
    assert set(again) == set(originals)
    for key, record in originals.items():
        assert sorted(again[key]["labels"]) == sorted(record["labels"]) and again[key]["text"] == record["text"]
    rows = get_task("eurovoc").rows("validation", path=str(path), languages=["fr"])
    assert rows and all(r["language"] == "fr" and r["source"] == "multi_eurlex" for r in rows)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"celex_id": "X", "eurovoc_concepts": {"level_1": ["999"]}, "text": {"en": "t"}}) + "\n")
    with pytest.raises(Exception) as caught:
        eurovoc.read_acts(broken)
    assert [(p.line, p.field) for p in caught.value.problems] == [(1, "eurovoc_concepts.level_1")]


def test_offline_rows_are_labelled_by_the_thesaurus():
    table = {d["id"]: d for d in eurovoc_offline.descriptors()}
    train = get_task("eurovoc-offline").rows("train")
    validation = get_task("eurovoc-offline").rows("validation")
    assert (len(train), len(validation)) == (300, 100)
    for row in train + validation:
        codes = sorted({table[i]["mt"][:2] for i in row["descriptor_ids"]})
        assert row["label_codes"] == codes
        assert row["labels"] == [eurovoc.DOMAIN_BY_CODE[c] for c in codes]
        assert all(f"- {table[i]['label']}\n" in row["messages"][0]["content"] for i in row["descriptor_ids"])
    # Validation descriptors are never seen in training; the rows are the same on every call.
    used = lambda rows: {i for r in rows for i in r["descriptor_ids"]}  # noqa: E731
    assert not used(train) & used(validation)
    assert get_task("eurovoc-offline").rows("train") == train
    assert get_task("eurovoc-offline").rows("train", seed=1) != train
    assert len(label_counts(train)) == 21


def test_offline_default_without_the_data_folder(tmp_path):
    env = dict(os.environ, OPENRFT_DATA_DIR="/nonexistent")
    code = ("from openrft.tasks import default_task, task_available; t = default_task(); "
            "print(t.name, len(t.rows('train')), task_available('eurovoc')[0])")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["eurovoc-offline", "300", "False"]
    assert "eurovoc-offline (the real data folder was not found)" in done.stderr
    out = tmp_path / "offline"
    done = subprocess.run([sys.executable, "-m", "openrft", "data", "export", "eurovoc-offline", "--out-dir", str(out)],
                          env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["grader.json", "response_format.json", "task.json", "train.jsonl",
                                                     "validation.jsonl"]
    done = subprocess.run([sys.executable, "-c", "from openrft.tasks import get_task; get_task('eurovoc').rows('train')"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "use the task 'eurovoc-offline'" in done.stderr


def test_default_task_prefers_the_real_acts(shared_data, capsys):
    assert default_task().name == "eurovoc"
    assert "task eurovoc" in capsys.readouterr().err


def test_gsm8k_rows(shared_data):
    task = get_task("gsm8k")
    train, validation = task.rows("train"), task.rows("validation")
    assert len(train) + len(validation) == 7473 and len(validation) <= 1000
    assert not {r["id"] for r in train} & {r["id"] for r in validation}
    for row in train[:200] + validation[:200]:
        assert row["answer"].split("####")[-1].strip().replace(",", "") == row["final_answer"]
        assert "'#### <number>'" in row["messages"][0]["content"]
    assert task.response_format is None and task.grader["name"] == "gsm8k_numeric"


def test_gsm8k_grader_reads_the_rows_final_answer(shared_data):
    """The task's grader, run in the sandbox on real rows: the row's own worked answer scores 1, the same answer
    with another final number scores 0, and a free-text answer ending in the right number scores 1."""
    from openrft.graders import build_grader
    from openrft.graders.sandbox import SandboxUnavailable, check_sandbox

    try:
        check_sandbox()
    except SandboxUnavailable as exc:
        pytest.skip(f"{exc} (scripts/setup_debian.sh installs bubblewrap)")
    task = get_task("gsm8k")
    grader = build_grader(task.grader)
    rows = task.rows("validation")[:4]

    def sample(text):
        return {"output_text": text, "output_json": None, "output_tools": [],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}

    wrong = str(int(float(rows[0]["final_answer"])) + 1)
    pairs = [(sample(r["answer"]), r) for r in rows]
    pairs += [(sample(rows[0]["answer"].rsplit("####", 1)[0] + "#### " + wrong), rows[0]),
              (sample(f"Step by step... so the answer is\n#### {rows[1]['final_answer']}"), rows[1])]
    rewards = [g.reward for g in grader.grade_many(pairs)]
    assert rewards == [1.0] * 4 + [0.0, 1.0], rewards


def test_unfair_tos_rows(shared_data):
    task = get_task("unfair-tos")
    train, validation = task.rows("train"), task.rows("validation")
    assert len(train) + len(validation) == 994  # six repeated sentences dropped
    assert not {r["id"] for r in train} & {r["id"] for r in validation}
    shares = [label_counts(rows)["None"] / len(rows) for rows in (train, validation)]
    assert all(0.85 < share < 0.92 for share in shares)  # stratified: the same share on both sides
    assert all(set(r["labels"]) <= set(task.labels) for r in train + validation)


def test_export_writes_files_any_rft_service_takes(tmp_path, shared_data, embedded_model):
    result = CliRunner().invoke(app, ["data", "export", "eurovoc", "--out-dir", str(tmp_path), "-o", "limit=120"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "task.json").read_text())
    train = load_rows(tmp_path / "train.jsonl", allow_duplicates=True)
    validation = load_rows(tmp_path / "validation.jsonl")
    assert summary["rows"]["validation"] == len(validation) == 120 and summary["balanced"]["rows"] == len(train)
    assert summary["balanced"]["imbalance_ratio"] < summary["imbalance_ratio"]["train"]
    assert json.loads((tmp_path / "grader.json").read_text()) == get_task("eurovoc").grader
    assert json.loads((tmp_path / "response_format.json").read_text()) == eurovoc.RESPONSE_FORMAT
    result = CliRunner().invoke(app, ["data", "check", str(tmp_path / "train.jsonl"), "--grader",
                                      str(tmp_path / "grader.json"), "--against", str(tmp_path / "validation.jsonl"),
                                      "--group-key", "celex_id", "--allow-duplicates"])
    assert result.exit_code == 0, result.output
    plain = tmp_path / "plain"
    result = CliRunner().invoke(app, ["data", "export", "eurovoc-offline", "--out-dir", str(plain), "--no-balance"])
    assert result.exit_code == 0, result.output
    assert check_file(plain / "train.jsonl", against=plain / "validation.jsonl") == []
    assert len(load_rows(plain / "train.jsonl")) == 300


def test_exported_rows_grade_with_the_task_grader(tmp_path):
    from openrft.graders import build_grader

    task = get_task("eurovoc-offline")
    rows = task.rows("validation", n_rows=5)
    grader = build_grader(task.grader)
    perfect = [({"output_text": json.dumps({"labels": r["labels"]}), "output_json": {"labels": r["labels"]}}, r)
               for r in rows]
    empty = [({"output_text": "{}", "output_json": {"labels": []}}, r) for r in rows]
    assert [g.reward for g in grader.grade_many(perfect)] == [1.0] * 5
    assert [g.reward for g in grader.grade_many(empty)] == [0.0] * 5
