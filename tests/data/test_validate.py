"""Loading and checking RFT JSONL: every problem with file, line, field and reason (issue 4, item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from openrft.cli import app
from openrft.data import DatasetError, check_file, load_rows, read_jsonl, write_rows
from openrft.data.validate import check_row

BROKEN = Path(__file__).resolve().parents[2] / "examples" / "data" / "broken.jsonl"

# What examples/data/broken.jsonl gets wrong, line by line (its README lists the same mistakes).
EXPECTED = {
    (2, "messages[0].role"), (3, "messages[1].role"), (4, "messages"), (5, "messages"), (6, "messages[0].content"),
    (7, ""), (8, ""), (9, "messages"), (10, "label codes"), (11, ""), (12, ""), (13, "messages[0].role"),
    (14, "messages[0].content[0].type"), (15, ""), (16, "messages[0].temperature"), (16, "tools"),
}


def row(text: str, **refs) -> dict:
    return {"messages": [{"role": "user", "content": text}], **refs}


def test_broken_file_reports_every_problem_at_once():
    problems = check_file(BROKEN)
    assert {(p.line, p.field) for p in problems} == EXPECTED
    assert all(p.file == str(BROKEN) and p.reason for p in problems)
    assert 1 not in {p.line for p in problems}  # the one good row
    with pytest.raises(DatasetError) as caught:
        load_rows(BROKEN)
    assert caught.value.problems == problems
    assert "16 problem(s)" in str(caught.value)


def test_cli_check_lists_problems_and_exits_non_zero(tmp_path):
    result = CliRunner().invoke(app, ["data", "check", str(BROKEN)])
    assert result.exit_code == 2
    for line, field in EXPECTED:
        assert f"broken.jsonl:{line}: {field or '(row)'}:" in result.output
    good = write_rows([row("Classify: tariffs", labels=["trade"])], tmp_path / "good.jsonl")
    result = CliRunner().invoke(app, ["data", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "1 rows, no problems" in result.output


def test_missing_and_empty_files(tmp_path):
    assert [(p.line, p.reason) for p in check_file(tmp_path / "nope.jsonl")] == [(0, "file not found")]
    (tmp_path / "empty.jsonl").write_text("")
    assert [p.reason for p in check_file(tmp_path / "empty.jsonl")] == ["the file is empty"]
    (tmp_path / "latin1.jsonl").write_bytes(b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n')
    assert "not UTF-8" in check_file(tmp_path / "latin1.jsonl")[0].reason


def test_roles_tools_and_assistant_turns():
    ok = {"messages": [{"role": "developer", "content": "Answer in JSON."},
                       {"role": "user", "content": [{"type": "input_text", "text": "What is 2+2?"}]},
                       {"role": "assistant", "content": None, "weight": 0,
                        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": "{}"}}]},
                       {"role": "tool", "tool_call_id": "c1", "content": "4"},
                       {"role": "user", "content": "So?"}],
          "tools": [{"type": "function", "function": {"name": "calc"}}], "answer": "4"}
    assert check_row(ok) == []
    bad = json.loads(json.dumps(ok))
    bad["messages"][2]["weight"] = True
    bad["messages"][3].pop("tool_call_id")
    bad["tools"].append({"type": "function", "function": {"name": "calc"}})
    assert {p.field for p in check_row(bad)} == {"messages[2].weight", "messages[3].tool_call_id",
                                                  "tools[1].function.name"}


def test_rows_in_both_files_and_groups_that_straddle(tmp_path):
    train = write_rows([row("act A in English", celex_id="A", labels=["trade"]),
                        row("act B in English", celex_id="B", labels=["law"])], tmp_path / "train.jsonl")
    valid = write_rows([row("act A in English", celex_id="A", labels=["trade"]),
                        row("act B in French", celex_id="B", labels=["law"]),
                        row("act C in English", celex_id="C", labels=["energy"])], tmp_path / "validation.jsonl")
    assert [(p.line, p.field) for p in check_file(train, against=valid)] == [(1, "messages")]
    problems = check_file(train, against=valid, group_key="celex_id")
    assert [(p.line, p.field) for p in problems] == [(1, "messages"), (2, "celex_id")]
    assert "validation.jsonl line 2" in problems[1].reason
    result = CliRunner().invoke(app, ["data", "check", str(train), "--against", str(valid), "--group-key", "celex_id"])
    assert result.exit_code == 2 and "train.jsonl:2: celex_id:" in result.output


def test_duplicates_are_allowed_only_when_asked(tmp_path):
    path = write_rows([row("x", labels=["a"]), row("x", labels=["a"])], tmp_path / "balanced.jsonl")
    assert [p.reason for p in check_file(path)] == ["duplicate of line 1"]
    assert check_file(path, allow_duplicates=True) == []
    assert len(load_rows(path, allow_duplicates=True)) == 2


def test_grader_fields_must_be_in_every_row(tmp_path):
    graders = pytest.importorskip("openrft.graders")
    if not hasattr(graders, "template_variables"):
        pytest.skip("openrft.graders.template_variables is not there yet")
    grader = {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}",
              "reference": "{{ item.answer }}", "operation": "eq"}
    path = write_rows([row("1+1?", answer="2"), row("2+2?", result="4")], tmp_path / "math.jsonl")
    (tmp_path / "grader.json").write_text(json.dumps(grader))
    problems = check_file(path, grader=tmp_path / "grader.json")
    assert [(p.line, p.field) for p in problems] == [(2, "answer")]
    assert "{{ item.answer }}" in problems[0].reason
    ready = graders.ready_grader("multilabel_f1")  # a python grader reading item["labels"]
    assert {(p.line, p.field) for p in check_file(BROKEN, grader=ready)} == EXPECTED | {(10, "labels")}
    bad = dict(grader, operation="contains")
    problems = check_file(path, grader=bad)
    assert problems and problems[0].file == "<grader>"


names = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True).filter(lambda k: k not in ("messages", "tools"))
values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                      max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=1).filter(str.strip), refs=st.dictionaries(names, values, max_size=4))
def test_any_well_formed_row_passes_and_round_trips(tmp_path_factory, text, refs):
    path = tmp_path_factory.mktemp("rows") / "rows.jsonl"
    rows = [row(text, **refs)]
    write_rows(rows, path)
    assert check_file(path) == []
    assert load_rows(path) == rows
    assert [r for _, r in read_jsonl(path)[0]] == rows
