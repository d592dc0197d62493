"""A tiny OpenAI-compatible chat-completions server for the HTTP engine tests, serving a local engine.

It runs for real on loopback (FastAPI + uvicorn in a thread) and can imitate servers that differ
from OpenAI's: one that ignores `n`, one that rejects a parameter with a 400, one that is rate
limited (429) for its first requests.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from openrft.engines import SamplingParams


def make_app(engine, *, honour_n: bool = True, rate_limited: int = 0, rejects: tuple[str, ...] = ()) -> FastAPI:
    app = FastAPI()
    app.state.requests = []  # every request body, in order
    app.state.rate_limited = rate_limited

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        body = await request.json()
        app.state.requests.append(body)
        if request.headers.get("authorization") != "Bearer test-key":
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
        if app.state.rate_limited > 0:
            app.state.rate_limited -= 1
            return JSONResponse({"error": {"message": "rate limited"}}, status_code=429,
                                headers={"retry-after": "0.01"})
        for key in rejects:
            if key in body:
                return JSONResponse({"error": {"message": f"Unsupported parameter: '{key}' is not supported "
                                               "with this model."}}, status_code=400)
        n = int(body.get("n", 1)) if honour_n else 1
        params = SamplingParams(n=n, temperature=body.get("temperature", 1.0), top_p=body.get("top_p", 1.0),
                                max_tokens=body.get("max_completion_tokens") or body.get("max_tokens") or 16,
                                seed=body.get("seed"), response_format=body.get("response_format"),
                                reasoning_effort=body.get("reasoning_effort"), tools=body.get("tools"),
                                tool_choice=body.get("tool_choice"),
                                parallel_tool_calls=body.get("parallel_tool_calls"))
        samples = engine.generate([body["messages"]], params)[0]
        choices = []
        for index, sample in enumerate(samples):
            message = {"role": "assistant", "content": sample.output_text}
            if sample.reasoning_text:
                message["reasoning_content"] = sample.reasoning_text
            if sample.output_tools:
                message["tool_calls"] = sample.output_tools
            choice = {"index": index, "message": message, "finish_reason": sample.choice_finish_reason}
            if body.get("logprobs"):
                tokens = [engine.tokenizer.decode([t]) for t in sample.token_ids]
                choice["logprobs"] = {"content": [{"token": tok, "logprob": lp, "bytes": list(tok.encode()),
                                                   "top_logprobs": []} for tok, lp in zip(tokens, sample.logprobs)]}
            choices.append(choice)
        usage = {"prompt_tokens": samples[0].prompt_tokens,
                 "completion_tokens": sum(s.completion_tokens for s in samples),
                 "completion_tokens_details": {"reasoning_tokens": sum(s.reasoning_tokens for s in samples)}}
        return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "choices": choices, "usage": usage}

    return app


@contextmanager
def serve(app: FastAPI):
    """Run the app on a free loopback port; yields the base URL (`http://127.0.0.1:PORT/v1`)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
