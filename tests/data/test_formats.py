"""SFT and DPO rows (issue 15): checked with file / line / field errors like RFT rows, told apart by their shape,
exported from a task's references, and made from an eval run's graded samples."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from openrft.cli import app
from openrft.data import check_file, load_rows
from openrft.data.formats import detect_method

USER = {"role": "user", "content": "What colour is the sea?"}
ANSWER = {"role": "assistant", "content": "Blue."}


def sft(*messages, **extra) -> dict:
    return {"messages": list(messages), **extra}


def dpo(good="Blue.", bad="Red.", **extra) -> dict:
    return {"input": {"messages": [USER]}, "preferred_output": [{"role": "assistant", "content": good}],
            "non_preferred_output": [{"role": "assistant", "content": bad}], **extra}


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rows_are_told_apart_by_their_shape():
    assert detect_method(sft(USER)) == "reinforcement"
    assert detect_method(sft(USER, ANSWER)) == "supervised"
    assert detect_method(dpo()) == "dpo"
    assert detect_method({"preferred_output": []}) == "dpo"


def test_good_sft_rows_pass_with_system_tools_weights_and_reference_fields(tmp_path):
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    rows = [sft({"role": "system", "content": "Be brief."}, USER, ANSWER, celex_id="32001R0001"),
            sft(USER, {**ANSWER, "weight": 0}, {"role": "user", "content": "And grass?"},
                {"role": "assistant", "content": [{"type": "text", "text": "Green."}], "weight": 1}),
            sft(USER, {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}, ANSWER, tools=tools,
                parallel_tool_calls=False)]
    path = write(tmp_path / "sft.jsonl", rows)
    assert check_file(path, method="supervised") == []
    assert load_rows(path, method="supervised") == rows


def test_sft_problems_name_line_and_field(tmp_path):
    path = write(tmp_path / "sft.jsonl", [
        sft(USER, ANSWER),
        sft(USER),  # no assistant target
        sft(USER, {**ANSWER, "weight": 0}),  # nothing trained on
        sft(USER, {"role": "assistant"}),  # neither content nor tool_calls
        sft(USER, {"role": "robot", "content": "x"}, ANSWER),
        {"conversation": [USER, ANSWER]},
        sft(USER, ANSWER, parallel_tool_calls="yes"),
        sft(USER, ANSWER, tools=[{"type": "function", "function": {}}]),
    ])
    problems = check_file(path, method="supervised")
    assert [(p.line, p.field) for p in problems] == [
        (2, "messages"), (3, "messages"), (4, "messages[1].content"), (5, "messages[1].role"), (6, "messages"),
        (7, "parallel_tool_calls"), (8, "tools[0].function.name")]
    assert all(p.file == str(path) for p in problems)
    assert "no assistant message" in problems[0].reason and "weight 0" in problems[1].reason


def test_dpo_problems_name_line_and_field(tmp_path):
    path = write(tmp_path / "dpo.jsonl", [
        dpo(),
        {k: v for k, v in dpo().items() if k != "non_preferred_output"},
        {k: v for k, v in dpo().items() if k != "input"},
        {**dpo(), "input": {"messages": [USER], "temperature": 1}},
        {**dpo(), "preferred_output": "Blue."},
        {**dpo(), "non_preferred_output": [{"role": "user", "content": "Red."}]},
        dpo(good="Same.", bad="Same."),
        {**dpo(), "input": {"messages": []}},
    ])
    problems = check_file(path, method="dpo")
    assert [(p.line, p.field) for p in problems] == [
        (2, "non_preferred_output"), (3, "input"), (4, "input.temperature"), (5, "preferred_output"),
        (6, "non_preferred_output[0].role"), (7, "non_preferred_output"), (8, "input.messages")]


def test_data_check_detects_the_method_or_takes_it(tmp_path):
    runner = CliRunner()
    good = write(tmp_path / "sft.jsonl", [sft(USER, ANSWER)])
    result = runner.invoke(app, ["data", "check", str(good)])
    assert result.exit_code == 0 and "1 rows, no problems (checked as supervised rows)" in result.output
    result = runner.invoke(app, ["data", "check", str(good), "--method", "reinforcement"])
    assert result.exit_code == 2 and f"{good}:1: messages[1].role: the last message must be the user's" in result.output
    bad = write(tmp_path / "dpo.jsonl", [dpo(), {"input": {"messages": [USER]}}])
    result = runner.invoke(app, ["data", "check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2: preferred_output: missing" in result.output and "checked as dpo rows" in result.output
    assert runner.invoke(app, ["data", "check", str(bad), "--method", "sft"]).exit_code == 2
    refused = runner.invoke(app, ["data", "export", "eurovoc", "--out-dir", str(tmp_path / "x"), "-o", "[bold]k"])
    assert refused.exit_code == 2 and "error: --option '[bold]k': expected KEY=VALUE" in refused.output  # as given


def test_an_upload_of_sft_or_dpo_rows_is_checked_in_its_own_format(tmp_path):
    from openrft.data.validate import check_upload

    assert check_upload(write(tmp_path / "a.jsonl", [sft(USER, ANSWER)]))[1] == 0
    assert check_upload(write(tmp_path / "b.jsonl", [dpo()]))[1] == 0
    problems, total = check_upload(write(tmp_path / "c.jsonl", [dpo(), {**dpo(), "preferred_output": []}]))
    assert total == 1 and (problems[0].line, problems[0].field) == (2, "preferred_output")


def test_a_label_task_exports_its_canonical_answer_as_the_assistant_message(tmp_path):
    from openrft.tasks.base import Task, json_labels_format
    from openrft.tasks.export import export_task

    labels = ["law", "trade", "science"]

    def loader(split):
        rows = [{"messages": [{"role": "user", "content": f"Act {split} {i}"}], "labels": chosen, "id": f"{split}{i}"}
                for i, chosen in enumerate([["science", "law"], ["trade"], ["science", "trade", "law"]])]
        return rows

    task = Task(name="toy", description="", loader=loader, grader_name="multilabel_f1", labels=labels,
                response_format=json_labels_format("toy", labels, min_items=1, max_items=2))
    summary = export_task(task, tmp_path, balance=False, method="supervised")
    assert summary["method"] == "supervised"
    rows = load_rows(tmp_path / "train.jsonl", method="supervised")
    answers = [json.loads(r["messages"][-1]["content"]) for r in rows]
    # in the task's label order, at most maxItems (2) labels: the response_format's shape
    assert answers == [{"labels": ["law", "science"]}, {"labels": ["trade"]}, {"labels": ["law", "trade"]}]
    assert rows[0]["labels"] == ["science", "law"] and rows[0]["messages"][0]["content"] == "Act train 0"
    result = CliRunner().invoke(app, ["data", "check", str(tmp_path / "validation.jsonl")])
    assert result.exit_code == 0 and "checked as supervised rows" in result.output


def eval_item(index: int, run: int, output: str, score: float | None, status: str = "fail") -> dict:
    """An output item as `openrft eval` writes it (`openrft.runs.OutputItem`)."""
    results = [] if score is None else [{"name": "f1", "score": score, "passed": score >= 0.5}]
    return {"object": "eval.run.output_item", "id": f"outputitem_{index}_{run}", "run_id": "evalrun_x",
            "eval_id": "eval_x", "created_at": 1, "datasource_item_id": index, "status": status,
            "datasource_item": {"labels": ["law"], "celex_id": f"c{index}"}, "results": results,
            "sample": {"input": [{"role": "user", "content": f"Act {index}"}],
                       "output": [{"role": "assistant", "content": output}], "finish_reason": "stop",
                       "model": "m", "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2,
                                               "cached_tokens": 0},
                       "error": None, "temperature": 1.0, "max_completion_tokens": 8, "top_p": 1.0, "seed": 0,
                       "run": run}}


def test_preferences_pair_each_items_best_and_worst_sample(tmp_path):
    run = tmp_path / "eval"
    run.mkdir()
    items = [eval_item(0, 0, "mid", 0.5), eval_item(0, 1, "best", 0.9), eval_item(0, 2, "worst", 0.1),
             eval_item(1, 0, "a", 0.4), eval_item(1, 1, "b", 0.4),  # a tie: skipped
             eval_item(2, 0, "only", 1.0),  # one sample: skipped
             eval_item(3, 0, "good", 1.0), eval_item(3, 1, "broken", None, status="error")]  # the error is left out
    (run / "output_items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    out = tmp_path / "pairs.jsonl"
    result = CliRunner().invoke(app, ["data", "preferences", str(run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = load_rows(out, method="dpo")
    assert len(rows) == 1
    assert rows[0]["input"] == {"messages": [{"role": "user", "content": "Act 0"}]}
    assert rows[0]["preferred_output"] == [{"role": "assistant", "content": "best"}]
    assert rows[0]["non_preferred_output"] == [{"role": "assistant", "content": "worst"}]
    assert rows[0]["celex_id"] == "c0"
    assert "1 pairs from 4 items" in result.output
    empty = CliRunner().invoke(app, ["data", "preferences", str(tmp_path), "--out", str(out)])
    assert empty.exit_code == 2 and "not an eval run directory" in empty.output
