"""Metric trackers: TensorBoard always available; W&B, MLflow and trackio when installed and asked for."""

from __future__ import annotations

import importlib.util
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence


def flatten(data: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "/"))
        elif isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict) and "name" in entry:
                    out.update(flatten({k: v for k, v in entry.items() if k not in ("name", "type", "model")},
                                       f"{name}/{entry['name']}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def wandb_options(config: dict, run_name: str) -> dict:
    """`wandb.init`'s project, name, entity and tags: the job's wandb integration's where it has one."""
    given = next((i.get("wandb") or {} for i in config.get("integrations") or [] if i.get("type") == "wandb"), {})
    options = {"project": given.get("project") or "openrft", "name": given.get("name") or run_name}
    options.update({key: given[key] for key in ("entity", "tags") if given.get(key)})
    return options


class Trackers:
    def __init__(self, names: Sequence[str], run_dir: Path, run_name: str, config: dict, log=print):
        self.sinks: list[Callable[[dict, int], Any]] = []  # each takes (flat metrics, step)
        for name in names:
            if name == "tensorboard":
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(run_dir / "tensorboard"))
                self.sinks.append(partial(_tb, writer))
                self._tb = writer
            elif importlib.util.find_spec(name) is None:
                log(f"tracker {name} asked for but not installed; skipped")
            elif name == "wandb":
                import wandb

                wandb.init(**wandb_options(config, run_name), config=config)
                self.sinks.append(lambda m, s: wandb.log(m, step=s))
            elif name == "mlflow":
                import mlflow

                mlflow.start_run(run_name=run_name)
                self.sinks.append(lambda m, s: mlflow.log_metrics({k.replace("/", "."): v for k, v in m.items()},
                                                                  step=s))
            elif name == "trackio":
                import trackio

                trackio.init(project="openrft", name=run_name, config=config)
                self.sinks.append(lambda m, s: trackio.log(m, step=s))

    def log(self, data: dict, step: int) -> None:
        metrics = flatten(data)
        for sink in self.sinks:
            sink(metrics, step)

    def close(self) -> None:
        if hasattr(self, "_tb"):
            self._tb.close()


def _tb(writer, metrics: dict, step: int) -> None:
    for key, value in metrics.items():
        writer.add_scalar(key, value, step)
    writer.flush()
