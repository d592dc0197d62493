"""The processes of a run: rank, world size and the few collectives the loops need (`Distributed`), and the
Ctrl-C / SIGTERM handling that stops a job at a step boundary (`SignalStop`)."""

from __future__ import annotations

import os
import signal
from typing import Any

import torch


class Distributed:
    """Rank, world size and the few collectives the loop needs (a no-op in a single process)."""

    def __init__(self):
        import torch.distributed as td

        self.td = td
        self.active = False
        if not td.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            PartialState(cpu=True)  # initialises the process group (gloo on CPU) from the launcher's environment
        self.active = td.is_available() and td.is_initialized()
        self.rank = td.get_rank() if self.active else 0
        self.world = td.get_world_size() if self.active else 1
        self.main = self.rank == 0

    def sum(self, value: float) -> float:
        if not self.active:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64)
        self.td.all_reduce(tensor)
        return float(tensor.item())

    def mean(self, count: float, total: float) -> float:
        return self.sum(count) / max(1.0, self.sum(total))

    def all_reduce_grads(self, model) -> None:
        if not self.active:
            return
        for p in model.parameters():
            if p.requires_grad:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                self.td.all_reduce(p.grad)

    def barrier(self) -> None:
        if self.active:
            self.td.barrier()


class SignalStop:
    """Ctrl-C / SIGTERM stop the job at the next step boundary with its state saved (a second Ctrl-C kills).

    The previous handlers are put back by `restore()` (run_job calls it when the job returns or raises)."""

    def __init__(self):
        self.action: str | None = None
        self._previous: dict[int, Any] = {}  # what signal.signal returned: a handler, SIG_DFL or None
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (e.g. a server worker thread): the caller's should_stop rules
                break

    def _handle(self, _signum, _frame):
        if self.action:
            raise KeyboardInterrupt
        self.action = "interrupt"

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


def unwrap(model):
    """The model inside a distributed wrapper (what is saved)."""
    return getattr(model, "module", model)
