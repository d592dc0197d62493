"""Dataset statistics: label frequencies, imbalance ratio, labels per row, prompt token lengths.

The same figures before and after balancing show whether a class still dominates the batches; prompt
token lengths (counted with the chat template the engine uses) show what truncation and batch sizes
to expect. `stats_tables` prints them with rich, `plot_stats` draws them into one PNG.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from openrft.data.labels import imbalance_ratio, label_counts, row_labels


def dataset_stats(rows: list[dict], *, label_key: str | None = "labels", tokenizer=None) -> dict:
    """Figures of one dataset as a JSON-ready dict.

    `label_key=None`, or a key no row has, leaves the label figures out. Prompt token lengths need a
    tokenizer (`openrft.models.load_tokenizer`); without one they are left out.
    """
    stats: dict = {"rows": len(rows)}
    if label_key and any(label_key in row for row in rows):
        counts = label_counts(rows, label_key)
        per_row = [len(set(row_labels(row, label_key, where=f"row {i + 1}"))) for i, row in enumerate(rows)]
        stats["label_key"] = label_key
        stats["labels"] = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
        stats["imbalance_ratio"] = imbalance_ratio(counts)
        stats["labels_per_row"] = {"mean": float(np.mean(per_row)), "min": int(min(per_row)), "max": int(max(per_row)),
                                   "histogram": dict(sorted(Counter(per_row).items()))}
    if tokenizer is not None and rows:
        lengths = prompt_token_lengths(rows, tokenizer)
        stats["prompt_tokens"] = {"mean": float(np.mean(lengths)), "p50": float(np.percentile(lengths, 50)),
                                  "p95": float(np.percentile(lengths, 95)), "max": int(max(lengths)),
                                  "values": lengths}
    return stats


def prompt_token_lengths(rows: list[dict], tokenizer) -> list[int]:
    """Tokens of each row's prompt as the model sees it (chat template with the generation prompt)."""
    texts = [tokenizer.apply_chat_template(row["messages"], add_generation_prompt=True, tokenize=False)
             for row in rows]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(ids) for ids in encoded]


def stats_tables(before: dict, after: dict | None = None, *, titles: tuple[str, str] = ("before", "after")):
    """Rich tables: a summary (rows, imbalance, labels per row, prompt tokens) and the label frequencies."""
    from rich.table import Table

    columns = [before] + ([after] if after is not None else [])
    names = list(titles[: len(columns)]) if after is not None else ["value"]
    summary = Table("figure", *names, title="dataset")
    summary.add_row("rows", *[str(s["rows"]) for s in columns])
    if "labels" in before:
        summary.add_row("labels in use", *[str(len(s.get("labels", {}))) for s in columns])
        summary.add_row("imbalance ratio (max/min)", *[f"{s['imbalance_ratio']:.1f}" for s in columns])
        summary.add_row("labels per row (mean)", *[f"{s['labels_per_row']['mean']:.2f}" for s in columns])
        summary.add_row("labels per row (min-max)",
                        *[f"{s['labels_per_row']['min']}-{s['labels_per_row']['max']}" for s in columns])
    if "prompt_tokens" in before:
        for key in ("mean", "p50", "p95", "max"):
            summary.add_row(f"prompt tokens ({key})", *[f"{s['prompt_tokens'][key]:.0f}" for s in columns
                                                        if "prompt_tokens" in s])
    tables = [summary]
    if "labels" in before:
        prefix = [f"{n} " for n in names] if after is not None else [""]
        freq = Table("label", *[f"{p}rows" for p in prefix], *[f"{p}share" for p in prefix], title="label frequencies")
        labels = list(before["labels"])
        labels += [label for label in (after or {}).get("labels", {}) if label not in before["labels"]]
        for label in labels:
            counts = [s.get("labels", {}).get(label, 0) for s in columns]
            shares = [f"{c / s['rows']:.1%}" if s["rows"] else "-" for c, s in zip(counts, columns)]
            freq.add_row(label, *[str(c) for c in counts], *shares)
        tables.append(freq)
    return tables


def plot_stats(path: str | Path, before: dict, after: dict | None = None, *, title: str = "",
               titles: tuple[str, str] = ("before", "after")) -> Path:
    """One PNG: label shares (before/after), labels per row, prompt token lengths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [before] + ([after] if after is not None else [])
    names = list(titles) if after is not None else ["rows"]
    panels = [p for p in ("labels", "labels_per_row", "prompt_tokens") if p in before]
    if not panels:
        raise ValueError("nothing to plot: the rows have no labels and no token lengths were computed")
    width = {"labels": 7.0, "labels_per_row": 4.0, "prompt_tokens": 4.5}
    size = (sum(width[p] for p in panels), 0.3 * len(before.get("labels", {})) + 3)
    fig, axes = plt.subplots(1, len(panels), figsize=size,
                             gridspec_kw={"width_ratios": [width[p] for p in panels]}, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "labels":
            labels = list(before["labels"])[::-1]
            y = np.arange(len(labels))
            height = 0.8 / len(columns)
            for k, (stats, name) in enumerate(zip(columns, names)):
                shares = [stats.get("labels", {}).get(label, 0) / max(stats["rows"], 1) for label in labels]
                ax.barh(y + k * height, shares, height=height,
                        label=f"{name} (imbalance {stats['imbalance_ratio']:.1f})")
            ax.set_yticks(y + height * (len(columns) - 1) / 2, labels, fontsize=8)
            ax.set_xlabel("share of rows with the label")
            ax.legend(fontsize=8, loc="lower right")
            ax.set_title("label frequencies")
        elif panel == "labels_per_row":
            bar = 0.8 / len(columns)
            for k, (stats, name) in enumerate(zip(columns, names)):
                hist = stats["labels_per_row"]["histogram"]
                keys = sorted(hist)
                ax.bar([key + (k - (len(columns) - 1) / 2) * bar for key in keys],
                       [hist[key] / max(stats["rows"], 1) for key in keys], width=bar, label=name)
            ax.set_xticks(sorted({key for stats in columns for key in stats["labels_per_row"]["histogram"]}))
            ax.set_xlabel("labels per row")
            ax.set_ylabel("share of rows")
            ax.legend(fontsize=8)
            ax.set_title("labels per row")
        else:
            for stats, name in zip(columns, names):
                if "prompt_tokens" in stats:
                    ax.hist(stats["prompt_tokens"]["values"], bins=30, alpha=0.6, label=name)
            ax.set_xlabel("prompt tokens (chat template)")
            ax.set_ylabel("rows")
            ax.legend(fontsize=8)
            ax.set_title("prompt lengths")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
