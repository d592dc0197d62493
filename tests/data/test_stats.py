"""Statistics: label frequencies, imbalance ratio, labels per row, prompt token lengths; table and PNG."""

from __future__ import annotations

from rich.console import Console
from typer.testing import CliRunner

from openrft.cli import app
from openrft.data import dataset_stats, plot_stats, stats_tables, write_rows
from openrft.models import load_tokenizer


def test_stats_of_real_rows(embedded_model, unfair_train, tmp_path):
    tokenizer = load_tokenizer("default")
    stats = dataset_stats(unfair_train, tokenizer=tokenizer)
    assert stats["rows"] == len(unfair_train)
    assert sum(stats["labels_per_row"]["histogram"].values()) == len(unfair_train)
    assert max(stats["labels"], key=stats["labels"].get) == "None"
    assert stats["imbalance_ratio"] == max(stats["labels"].values()) / min(stats["labels"].values())
    lengths = stats["prompt_tokens"]["values"]
    assert len(lengths) == len(unfair_train) and min(lengths) > 50  # instructions + chat template
    console = Console(record=True, width=120)
    for table in stats_tables(stats):
        console.print(table)
    text = console.export_text()
    assert "imbalance ratio" in text and "Unilateral termination" in text
    png = plot_stats(tmp_path / "stats.png", stats)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_stats_table_and_png(embedded_model, unfair_train, tmp_path):
    source = write_rows(unfair_train, tmp_path / "train.jsonl")
    result = CliRunner().invoke(app, ["data", "stats", str(source), "--png", str(tmp_path / "s.png")])
    assert result.exit_code == 0, result.output
    assert "prompt tokens (p95)" in result.output and "label frequencies" in result.output
    assert (tmp_path / "s.png").stat().st_size > 10_000
