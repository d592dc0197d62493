"""A small LRU of loaded engines for the chat route, so that a model is loaded once, not per request.

Loading happens under one lock (two requests for a new model load it once); each engine then has its
own lock, because one model's `generate` is not safe to call from two threads at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from openrft.engines import Engine, Messages, Sample, SamplingParams, get_engine

DEFAULT_SIZE = 3


def default_device() -> str:
    """The device this process samples on: its (first visible) GPU when there is one, else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_engine(model: str) -> Engine:
    return get_engine(model, device=default_device())


class EngineCache:
    def __init__(self, size: int = DEFAULT_SIZE, factory=load_engine):
        self.size = size
        self.factory = factory
        self._engines: OrderedDict[str, tuple[Engine, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: str) -> tuple[Engine, threading.Lock]:
        """The engine of `model` (loaded on first use; the least recently used one is dropped)."""
        with self._lock:
            if model in self._engines:
                self._engines.move_to_end(model)
                return self._engines[model]
            entry = (self.factory(model), threading.Lock())
            self._engines[model] = entry
            while len(self._engines) > self.size:
                self._engines.popitem(last=False)
            return entry

    def generate(self, model: str, prompts: list[Messages], params: SamplingParams) -> list[list[Sample]]:
        engine, lock = self.get(model)
        with lock:
            return engine.generate(prompts, params)

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._engines)
