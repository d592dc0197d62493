"""An engine over any OpenAI-compatible chat-completions endpoint (`base_url`, `api_key`).

Used to evaluate external models as baselines through the same eval path as local ones. Each prompt
is one `POST {base_url}/chat/completions` with `n` choices; prompts run concurrently on a thread pool.

- `response_format` and `reasoning_effort` are passed through; the answer is parsed and validated
  locally against the schema, exactly as for local engines (`output_json`, `parse_error`).
- `tools`, `tool_choice` and `parallel_tool_calls` are passed through (checked locally first); the server's
  `message.tool_calls` become `Sample.output_tools`.
- `logprobs` are requested and read when the server returns them (`Sample.logprobs`; `token_ids`
  stay empty: chat completions name tokens by text, not id). The reasoning text comes from
  `message.reasoning_content` (or `message.reasoning`) when the server sends it.
- Servers differ: a 400 that names an optional parameter this engine sent (`logprobs`, `n`, `seed`,
  `top_p`, `temperature`, `reasoning_effort`) makes it drop that parameter for this engine and retry;
  a server that returns fewer than `n` choices (or rejects `n`) is asked again until there are `n`.
- 429, 5xx and connection errors are retried with exponential backoff (honouring `Retry-After`).
  A prompt that still fails yields Samples with `finish_reason="error"` and `error` set (errors are
  values inside a run), not an exception.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from openrft.engines.base import EngineError, Messages, Sample, SamplingParams
from openrft.engines.reasoning import effort_level
from openrft.engines.structured import parse_answer, response_schema
from openrft.engines.tools import tool_use

OPTIONAL_PARAMETERS = ("logprobs", "n", "seed", "top_p", "temperature", "reasoning_effort")
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class HttpEngine:
    """Samples from a remote OpenAI-compatible chat-completions endpoint."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 max_concurrency: int = 8, max_retries: int = 5, backoff_s: float = 0.5,
                 timeout_s: float = 300.0, max_tokens_field: str = "max_completion_tokens",
                 request_logprobs: bool = True, progress: bool = False):
        if not base_url:
            raise EngineError("the http engine needs base_url (e.g. http://localhost:8000/v1)")
        self.model_name = model
        self.base_url = base_url.rstrip("/")
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_tokens_field = max_tokens_field
        self.unsupported: set[str] = set() if request_logprobs else {"logprobs"}
        self.progress = progress
        self._lock = threading.Lock()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.client.close()

    def generate(self, prompts: list[Messages], params: SamplingParams) -> list[list[Sample]]:
        if params.n < 1:
            raise EngineError(f"n: expected at least 1, got {params.n}")
        schema = response_schema(params.response_format)
        effort_level(params.reasoning_effort)  # validates
        tool_use(params.tools, params.tool_choice, params.parallel_tool_calls)  # validates
        workers = max(1, min(self.max_concurrency, len(prompts)))
        with ThreadPoolExecutor(max_workers=workers) as pool, Progress(
                TextColumn("requests"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                transient=True, disable=not self.progress) as bar:
            task = bar.add_task("requests", total=len(prompts))
            futures = [pool.submit(self._prompt_samples, i, messages, params, schema)
                       for i, messages in enumerate(prompts)]
            for _ in as_completed(futures):
                bar.advance(task)
            return [future.result() for future in futures]

    # --- one prompt: as many requests as it takes to get n choices ---
    def _prompt_samples(self, index: int, messages: Messages, params: SamplingParams, schema) -> list[Sample]:
        samples: list[Sample] = []
        attempts = 0
        while len(samples) < params.n:
            wanted = params.n - len(samples)
            started = time.perf_counter()
            try:
                reply = self._post(self._body(messages, params, wanted, seed_offset=len(samples)))
            except EngineError as exc:
                return samples + [Sample(prompt_index=index, output_text="", finish_reason="error", error=str(exc),
                                         model=self.model_name) for _ in range(wanted)]
            latency = time.perf_counter() - started
            choices = reply.get("choices") or []
            usage = reply.get("usage") or {}
            for choice in choices[:wanted]:
                samples.append(self._sample(index, choice, usage, len(choices), schema, latency))
            attempts += 1
            if not choices and attempts > self.max_retries:
                return samples + [Sample(prompt_index=index, output_text="", finish_reason="error",
                                         error="the server returned no choices", model=self.model_name)
                                  for _ in range(params.n - len(samples))]
        return samples

    def _body(self, messages: Messages, params: SamplingParams, n: int, seed_offset: int) -> dict:
        with self._lock:
            unsupported = set(self.unsupported)
        body: dict = {"model": self.model_name, "messages": messages, self.max_tokens_field: params.max_tokens}
        optional: dict[str, object] = {"temperature": params.temperature, "top_p": params.top_p, "logprobs": True}
        if n > 1:
            optional["n"] = n
        if params.seed is not None:
            optional["seed"] = params.seed + seed_offset  # repeated calls must not repeat the same draws
        if effort_level(params.reasoning_effort) is not None:
            optional["reasoning_effort"] = params.reasoning_effort
        body.update({key: value for key, value in optional.items() if key not in unsupported})
        if params.response_format is not None:
            body["response_format"] = params.response_format
        if params.tools:
            body["tools"] = params.tools
            for key in ("tool_choice", "parallel_tool_calls"):
                if getattr(params, key) is not None:
                    body[key] = getattr(params, key)
        if "n" in unsupported:
            body.pop("n", None)
        return body

    def _post(self, body: dict) -> dict:
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.post(url, json=body)
            except httpx.HTTPError as exc:  # connection refused, reset, timeout
                if attempt == self.max_retries:
                    raise EngineError(f"POST {url}: {type(exc).__name__}: {exc}") from exc
                self._sleep(attempt, None)
                continue
            if response.status_code == 200:
                return response.json()
            if response.status_code == 400:
                dropped = self._drop_unsupported(response.text, body)
                if dropped:
                    continue
            if response.status_code in RETRY_STATUS and attempt < self.max_retries:
                self._sleep(attempt, response.headers.get("retry-after"))
                continue
            raise EngineError(f"POST {url}: HTTP {response.status_code}: {response.text[:500]}")
        raise EngineError(f"POST {url}: gave up after {self.max_retries + 1} attempts")

    def _drop_unsupported(self, message: str, body: dict) -> bool:
        """Drop the optional parameter a 400 complains about (for this and later requests)."""
        lowered = message.lower()
        for key in OPTIONAL_PARAMETERS:
            if key in body and (f"'{key}'" in lowered or f'"{key}"' in lowered or f"`{key}`" in lowered
                                or f" {key} " in lowered or f"{key}:" in lowered):
                with self._lock:
                    self.unsupported.add(key)
                body.pop(key)
                return True
        return False

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        try:
            delay = float(retry_after) if retry_after is not None else None
        except ValueError:
            delay = None
        if delay is None:
            delay = self.backoff_s * 2 ** attempt * (1 + random.random() / 4)
        time.sleep(min(delay, 60.0))

    def _sample(self, index: int, choice: dict, usage: dict, count: int, schema, latency: float) -> Sample:
        message = choice.get("message") or {}
        text = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        logprob_items = ((choice.get("logprobs") or {}).get("content")) or []
        logprobs = [float(item["logprob"]) for item in logprob_items if item.get("logprob") is not None]
        details = usage.get("completion_tokens_details") or {}
        # usage counts all choices of a request together: with n > 1 it is split evenly between them
        if usage.get("completion_tokens") is not None:
            completion_tokens = int(usage["completion_tokens"]) // max(count, 1)
        else:
            completion_tokens = len(logprob_items)
        reasoning_tokens = int(details.get("reasoning_tokens") or 0) // max(count, 1)
        calls = [{"id": c.get("id") or "", "type": "function",
                  "function": {"name": (c.get("function") or {}).get("name"),
                               "arguments": (c.get("function") or {}).get("arguments") or "{}"}}
                 for c in message.get("tool_calls") or [] if isinstance(c, dict)]
        output_json, parse_error = parse_answer(text.strip(), schema) if not calls else (None, None)
        return Sample(prompt_index=index, output_text=text.strip(), output_json=output_json, output_tools=calls,
                      reasoning_text=reasoning.strip(), logprobs=logprobs,
                      prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      completion_tokens=completion_tokens,
                      reasoning_tokens=reasoning_tokens, finish_reason=_finish_reason(choice.get("finish_reason")),
                      parse_error=parse_error, latency_s=latency, model=self.model_name)


def _finish_reason(value: str | None) -> str:
    if value in ("length", "max_tokens"):
        return "length"
    return "stop" if value in (None, "stop", "eos", "end_turn", "tool_calls", "content_filter") else str(value)
