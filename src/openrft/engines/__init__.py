"""Sampling engines behind one protocol (see base.py): transformers (default), vllm (GPU), http."""

from openrft.engines.base import Engine, EngineError, Messages, Sample, SamplingParams

__all__ = ["Engine", "EngineError", "Messages", "Sample", "SamplingParams", "get_engine"]


def get_engine(model: str, *, backend: str = "transformers", base_url: str | None = None,
               api_key: str | None = None, **options) -> Engine:
    """Build the engine for a model name (see openrft.models) or, with base_url, a remote endpoint."""
    if base_url or backend == "http":
        from openrft.engines.http import HttpEngine

        return HttpEngine(model, base_url=base_url, api_key=api_key, **options)
    if backend == "transformers":
        from openrft.engines.transformers import TransformersEngine

        return TransformersEngine.from_name(model, **options)
    if backend == "vllm":
        from openrft.engines.vllm import VllmEngine

        return VllmEngine(model, **options)
    raise EngineError(f"unknown engine backend {backend!r} (expected transformers, vllm or http)")
