"""The vLLM engine (GPU, optional extra `pip install 'openrft[vllm]'`).

Same prompts, same grammar, same Samples as the transformers engine:

- prompts are rendered by `reasoning.render_prompt` and passed as token ids, so both engines see
  the same tokens;
- tools are rendered and parsed as there (tools.py);
- a response_format, required tool calls and/or a reasoning effort become the same xgrammar structural tag
  (`structured.structural_tag`), handed to vLLM as structured outputs (`StructuredOutputsParams`,
  or `GuidedDecodingParams` on vLLM < 0.10.2); the reasoning budget is enforced by that grammar;
- `n` samples per prompt come from one request (vLLM shares the prompt's KV blocks between them).

Log-probabilities: vLLM is built with `logprobs_mode="processed_logprobs"`, i.e. log-softmax after
temperature, its grammar mask and top_p: the log-probability under the distribution the token was drawn
from, the same contract as the transformers engine (`openrft.engines.sampling`). One difference remains:
vLLM enforces the xgrammar grammar only, not openrft's canonical-label rule (constraints.py), so with an
enum in the schema it may spell a label in pieces the transformers engine never would; the trainer's replay
raises on a sample the rule excludes rather than train on masks that are not the sampler's.

Adapter checkpoints (peft) are served with vLLM's LoRA support over their base model.
"""

from __future__ import annotations

import json
import time

from openrft.engines.base import EngineError, Messages, Sample, SamplingParams
from openrft.engines.reasoning import has_native_thinking, reasoning_token_count, render_prompt, split_completion
from openrft.engines.structured import parse_answer, response_schema, structural_tag
from openrft.engines.tools import answer_and_calls, check_tools_grammar, strip_special_tokens, tool_use

INSTALL_HINT = "vllm is not installed: pip install 'openrft[vllm]' on a machine with a CUDA GPU"


def _import_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise EngineError(INSTALL_HINT) from exc
    return vllm


class VllmEngine:
    """Samples with vllm.LLM; see the module docstring."""

    def __init__(self, model: str, *, dtype: str = "auto", gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = None, max_lora_rank: int = 64, **llm_options):
        vllm = _import_vllm()
        from openrft.models import resolve_model

        self.model_name = str(model)
        ref = resolve_model(model)
        base = ref.base if ref.kind == "adapter" else ref
        assert base is not None  # resolve_model gives every adapter its base
        self.lora = None
        options = dict(dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                       logprobs_mode="processed_logprobs", enable_prefix_caching=True, **llm_options)
        if max_model_len:
            options["max_model_len"] = max_model_len
        if ref.kind == "adapter":
            from vllm.lora.request import LoRARequest

            options.update(enable_lora=True, max_lora_rank=max_lora_rank)
            self.lora = LoRARequest("openrft-adapter", 1, str(ref.path))
        try:
            self.llm = vllm.LLM(model=str(base.path), **options)
        except Exception as exc:  # no GPU, out of memory, unsupported architecture
            raise EngineError(f"vllm could not load {base.path}: {exc}") from exc
        self.tokenizer = self.llm.get_tokenizer()
        self.native_thinking = has_native_thinking(self.tokenizer)

    def generate(self, prompts: list[Messages], params: SamplingParams) -> list[list[Sample]]:
        from vllm import SamplingParams as VllmSamplingParams

        if params.n < 1:
            raise EngineError(f"n: expected at least 1, got {params.n}")
        schema = response_schema(params.response_format)
        tools = tool_use(params.tools, params.tool_choice, params.parallel_tool_calls)
        if tools is not None and (tools.constrained or (tools.prompted and schema is not None)):
            check_tools_grammar(tools)
        rendered = [render_prompt(self.tokenizer, messages, params.reasoning_effort, native=self.native_thinking,
                                  tools=tools) for messages in prompts]
        token_ids = [self.tokenizer(text, add_special_tokens=False)["input_ids"] for text, _ in rendered]
        think = rendered[0][1] if rendered else None
        tag = structural_tag(schema, think, tools)
        options = dict(n=params.n, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens,
                       seed=params.seed, logprobs=0, min_tokens=0 if tag is not None else params.min_tokens)
        if tag is not None:
            options.update(_structured_outputs(tag))
        sampling = VllmSamplingParams(**options)
        started = time.perf_counter()
        inputs = [{"prompt_token_ids": ids} for ids in token_ids]
        outputs = self.llm.generate(inputs, sampling, lora_request=self.lora, use_tqdm=False)
        latency = time.perf_counter() - started
        results = []
        for index, (output, ids, (_, prompt_think)) in enumerate(zip(outputs, token_ids, rendered)):
            samples = []
            for k, completion in enumerate(output.outputs):
                completion_ids = list(completion.token_ids)
                logprobs = [_chosen_logprob(entry, token) for entry, token in
                            zip(completion.logprobs or [], completion_ids)]
                keep_special = prompt_think is not None or (tools is not None and tools.prompted)
                text = self.tokenizer.decode(completion_ids, skip_special_tokens=not keep_special)
                reasoning, answer = split_completion(text, prompt_think)
                if keep_special:
                    answer = strip_special_tokens(self.tokenizer, answer)
                answer, calls = answer_and_calls(answer, tools, seed=f"{params.seed}:{index}:{k}:{completion_ids}")
                output_json, parse_error = parse_answer(answer, schema) if not calls else (None, None)
                samples.append(Sample(
                    prompt_index=index, output_text=answer, output_json=output_json, output_tools=calls,
                    reasoning_text=reasoning,
                    token_ids=completion_ids, logprobs=logprobs, prompt_token_ids=list(ids), prompt_tokens=len(ids),
                    completion_tokens=len(completion_ids),
                    reasoning_tokens=reasoning_token_count(self.tokenizer, completion_ids, prompt_think),
                    finish_reason="length" if completion.finish_reason == "length" else "stop",
                    parse_error=parse_error, latency_s=latency, model=self.model_name))
            results.append(samples)
        return results


def _structured_outputs(tag: dict) -> dict:
    """The SamplingParams keyword that carries a structural tag, for this vLLM version."""
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:  # vLLM < 0.10.2
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(structural_tag=json.dumps(tag))}
    return {"structured_outputs": StructuredOutputsParams(structural_tag=json.dumps(tag))}


def _chosen_logprob(entry, token: int) -> float:
    """The sampled token's log-probability from one step of vLLM's logprobs (dict token id -> Logprob)."""
    value = entry[token] if token in entry else next(iter(entry.values()))
    return float(getattr(value, "logprob", value))
