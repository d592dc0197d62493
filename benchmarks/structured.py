"""Structured outputs: the parse rate of the embedded model's EuroVoc answers with and without the constraint.

    python benchmarks/structured.py                 # 16 validation acts x 8 samples, 64 tokens; results/structured.json
    python benchmarks/structured.py --prompts 4     # a quicker run

The same prompts (the EuroVoc task's validation rows, the prompt that asks for `{"labels": [...]}`) are sampled
twice by the transformers engine, temperature 1: once with the task's json_schema response_format enforced by
the grammar, once as free text. An answer "parses" when it is JSON valid under the schema
(`openrft.engines.structured.parse_answer`, the check every eval and training sample goes through); answers cut
at max_tokens are counted apart, since a cut answer cannot parse either way. Tokens/s of both runs show what
the grammar costs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results" / "structured.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from openrft.engines import SamplingParams
    from openrft.engines.structured import parse_answer
    from openrft.engines.transformers import TransformersEngine
    from openrft.tasks import get_task

    console = Console(stderr=True)
    task = get_task("eurovoc")
    rows = task.rows("validation")[: args.prompts]
    prompts = [row["messages"] for row in rows]
    schema = task.response_format["json_schema"]["schema"]
    engine = TransformersEngine.from_name("default")
    results = {}
    for name, response_format in (("constrained", task.response_format), ("free text", None)):
        params = SamplingParams(n=args.samples, temperature=1.0, max_tokens=args.max_tokens, seed=args.seed,
                                response_format=response_format)
        began = time.perf_counter()
        samples = [s for group in engine.generate(prompts, params) for s in group]
        seconds = time.perf_counter() - began
        parsed = [parse_answer(s.output_text, schema)[1] is None for s in samples]
        cut = [s.finish_reason == "length" for s in samples]
        finished = [p for p, c in zip(parsed, cut) if not c]
        results[name] = {
            "samples": len(samples), "parse_rate": sum(parsed) / len(samples),
            "parse_rate_of_finished": sum(finished) / len(finished) if finished else None,
            "cut_at_max_tokens": sum(cut) / len(samples),
            "tokens": sum(s.completion_tokens for s in samples), "seconds": seconds,
            "tokens_per_s": sum(s.completion_tokens for s in samples) / seconds,
            "examples": [s.output_text[:160] for s in samples[:: max(1, len(samples) // 4)]][:4],
        }
    table = Table("run", "samples", "parse rate", "of finished", "cut at max_tokens", "tokens/s",
                  title=f"EuroVoc answers: {len(prompts)} acts x {args.samples} samples, <= {args.max_tokens} tokens")
    for name, r in results.items():
        table.add_row(name, str(r["samples"]), f"{r['parse_rate']:.1%}",
                      "-" if r["parse_rate_of_finished"] is None else f"{r['parse_rate_of_finished']:.1%}",
                      f"{r['cut_at_max_tokens']:.1%}", f"{r['tokens_per_s']:.0f}")
    console.print(table)
    for name, r in results.items():
        console.print(f"[bold]{name}[/] e.g. " + " | ".join(repr(e) for e in r["examples"][:2]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"prompts": len(prompts), "samples_per_prompt": args.samples,
                                    "max_tokens": args.max_tokens, "results": results}, indent=2))
    console.print(f"-> {args.out}")


if __name__ == "__main__":
    main()
