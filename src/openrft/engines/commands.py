"""`openrft sample`: sample answers to one prompt from any engine, to see what a model does."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def load_response_format(path: Path) -> dict:
    """A response_format from a JSON file: OpenAI's object, or a bare JSON schema (wrapped as json_schema)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise typer.BadParameter(f"{path}: file not found", param_hint="--response-format") from None
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{path}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}",
                                 param_hint="--response-format") from exc
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: expected a JSON object", param_hint="--response-format")
    if data.get("type") in ("json_schema", "json_object", "text"):
        return data
    return {"type": "json_schema", "json_schema": {"name": path.stem, "strict": True, "schema": data}}


def sample(
    prompt: str = typer.Option(..., "--prompt", "-p", help="the user message"),
    model: str = typer.Option("default", help="model name or path (see `openrft models`), or the remote model name"),
    system: str | None = typer.Option(None, help="a system message before the prompt"),
    response_format: Path | None = typer.Option(None, "--response-format",
                                                help="JSON file: OpenAI response_format, or a bare JSON schema"),
    n: int = typer.Option(4, "--n", "-n", min=1, help="samples"),
    reasoning_effort: str | None = typer.Option(None, help="default, low, medium or high"),
    temperature: float = typer.Option(1.0, min=0.0),
    top_p: float = typer.Option(1.0, min=0.0, max=1.0),
    max_tokens: int = typer.Option(256, min=1, help="new tokens per sample, reasoning included"),
    seed: int | None = typer.Option(None),
    backend: str = typer.Option("transformers", help="transformers, vllm or http"),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible endpoint (implies --backend http)"),
    api_key: str | None = typer.Option(None, envvar="OPENAI_API_KEY", help="key for --base-url"),
    device: str = typer.Option("cpu", help="transformers backend: cpu or cuda"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON line per sample instead of a table"),
):
    """Sample answers to one prompt and show them with their reasoning, tokens and parse status."""
    from openrft.engines import SamplingParams, get_engine

    rf = load_response_format(response_format) if response_format else None
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    options: dict[str, bool | str] = {"progress": not as_json}
    if backend == "transformers" and not base_url:
        options["device"] = device
    elif backend == "vllm":
        options = {}
    # an EngineError (or a ModelError) is printed by the command line's one error handler (openrft.cli)
    engine = get_engine(model, backend=backend, base_url=base_url, api_key=api_key, **options)
    params = SamplingParams(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
                            response_format=rf, reasoning_effort=reasoning_effort)
    samples = engine.generate([messages], params)[0]
    if as_json:
        for item in samples:
            typer.echo(json.dumps(item.to_dict(), ensure_ascii=False))
        return
    table = Table("#", "answer", "json", "reasoning", "tokens", "finish", title=f"{engine.model_name}: {n} samples")
    for k, item in enumerate(samples):
        parsed = "-" if rf is None else ("ok" if item.parse_error is None else f"[red]{item.parse_error}[/]")
        reasoning = item.reasoning_text if len(item.reasoning_text) < 300 else item.reasoning_text[:297] + "..."
        tokens = f"{item.completion_tokens} ({item.reasoning_tokens} reasoning)"
        finish = item.finish_reason if not item.error else f"[red]error: {item.error}[/]"
        table.add_row(str(k), item.output_text, parsed, reasoning, tokens, finish)
    console.print(table)
    latency = samples[0].latency_s if samples else 0.0
    console.print(f"{sum(s.completion_tokens for s in samples)} tokens in {latency:.1f} s")
