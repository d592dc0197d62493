"""`openrft sample`: samples as a table or as JSON lines."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from openrft.cli import app

from .conftest import eurovoc_response_format


def test_sample_prints_one_json_line_per_sample(embedded_model, tmp_path):
    schema_file = tmp_path / "eurovoc.json"
    schema_file.write_text(json.dumps(eurovoc_response_format()["json_schema"]["schema"]))  # a bare schema
    result = CliRunner().invoke(app, ["sample", "--prompt", "A regulation on fishing quotas. Domains?",
                                      "--response-format", str(schema_file), "--n", "2", "--max-tokens", "64",
                                      "--seed", "1", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert line["parse_error"] is None or line["finish_reason"] == "length"
        assert {"output_text", "output_json", "reasoning_text", "completion_tokens", "finish_reason"} <= set(line)


def test_sample_shows_a_table(embedded_model):
    result = CliRunner().invoke(app, ["sample", "-p", "Say hello.", "-n", "2", "--max-tokens", "6",
                                      "--reasoning-effort", "low"])
    assert result.exit_code == 0, result.output
    assert "2 samples" in result.output and "reasoning" in result.output


def test_a_bad_response_format_file_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text('{"type": "object",\n "properties": }')
    result = CliRunner().invoke(app, ["sample", "-p", "x", "--response-format", "bad.json"])
    assert result.exit_code == 2  # a usage error, before any model is loaded
    assert "bad.json" in result.output and "line 2" in result.output
