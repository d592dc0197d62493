"""A small LRU of loaded engines for the chat route, so that a model is loaded once, not per request.

Loading happens under one lock (two requests for a new model load it once); each engine then has its
own lock, because one model's `generate` is not safe to call from two threads at once.

`openrft serve --upstream URL` sends some models to an external OpenAI-compatible server (vLLM or
llama.cpp serving an export) through the http engine: `use_upstream` puts the route in this process's
environment, which the worker processes inherit, and `load_engine` (chat, the playground, eval runs) reads it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

from openrft.engines import Engine, Messages, Sample, SamplingParams, get_engine

DEFAULT_SIZE = 3


def default_device() -> str:
    """The device this process samples on: its (first visible) GPU when there is one, else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


UPSTREAM_URL = "OPENRFT_UPSTREAM_URL"
UPSTREAM_KEY = "OPENRFT_UPSTREAM_API_KEY"
UPSTREAM_MODELS = "OPENRFT_UPSTREAM_MODELS"  # one name a line; none: every model openrft does not know


def load_engine(model: str) -> Engine:
    """The engine of `model`: the upstream server's when the route sends it there, else a local one."""
    route = upstream_route(model)
    if route is not None:
        return get_engine(model, base_url=route[0], api_key=route[1])
    return get_engine(model, device=default_device())


def use_upstream(base_url: str, api_key: str | None = None, models: list[str] | None = None) -> None:
    """Route the models named in `models` (or, when none are, every model openrft cannot resolve) to the
    OpenAI-compatible server at `base_url`, in this process and the worker processes it starts."""
    os.environ[UPSTREAM_URL] = base_url
    os.environ[UPSTREAM_MODELS] = "\n".join(models or [])
    if api_key:
        os.environ[UPSTREAM_KEY] = api_key


def upstream_route(model: str) -> tuple[str, str | None] | None:
    """(base_url, api_key) of the upstream server when `model` goes there, else None."""
    url = os.environ.get(UPSTREAM_URL)
    if not url:
        return None
    named = [name for name in os.environ.get(UPSTREAM_MODELS, "").split("\n") if name]
    remote = model in named if named else not resolvable(model)
    return (url, os.environ.get(UPSTREAM_KEY) or None) if remote else None


def resolvable(model: str) -> bool:
    """Whether openrft.models knows `model` (checked without converting or loading anything)."""
    from openrft.models import ModelError, resolve_model

    try:
        resolve_model(model, prepare=False)
    except ModelError:
        return False
    return True


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

    def drop(self, model: str) -> None:
        """Forget the engine of `model` (its weights were deleted)."""
        with self._lock:
            self._engines.pop(model, None)

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._engines)
