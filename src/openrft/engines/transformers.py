"""The default engine: sampling with a Hugging Face transformers model (CPU or GPU), no server.

How a batch is sampled (`TransformersEngine.generate`):

1. each chat prompt is rendered with the model's chat template (plus the reasoning format, see
   reasoning.py, and the call's function tools, see tools.py) and tokenized; prompts are processed
   in groups of at most `max_batch_rows // n`;
2. the tokens every prompt of the call starts with (a task's instructions) are prefilled once for the
   call (`kv.Instructions`); each group's prompts are then prefilled once each from where the
   instructions end (left-padded into one batch), and their `n` samples decode together with a
   prefix-sharing KV cache (kv.py): the instructions' keys and values are stored and read once per
   call, the rest of a prompt's once per group instead of once per sample;
3. at every step the next token of each sample is drawn from softmax(logits / temperature),
   restricted by top_p and by the grammar of the response_format/reasoning/required tool calls
   (structured.py); a prompt group leaves the batch when all its samples have finished. Tool calls in
   an answer are parsed into `Sample.output_tools` (tools.py).

Log-probabilities (`Sample.logprobs`): `logprobs[t]` is the log-probability of token t under the
distribution it was drawn from: softmax(logits_t / temperature) restricted to the tokens the constraint
allows (the response_format's grammar, canonical labels, uniqueItems: constraints.py) and to the top_p
nucleus, renormalised (`sampling.sampling_logprobs`). The trainer recomputes exactly this, replaying each
sample's constraint (`replay_masks`), so the importance ratio is 1 before the first update and the policy
gradient is that of the policy that sampled. A token the grammar forces has log-probability 0. With
temperature 0 (greedy), the temperature-1 distribution is used.

Random draws: one stream per (prompt, sample) (`sampling.item_streams`), so a prompt's samples do not
depend on its position in the batch or on the other prompts of the call.

The engine holds no copy of the weights: it calls the live model, so it can wrap the trainer's peft
policy (`TransformersEngine(model, tokenizer)`) and samples after an optimizer step see the new
weights. The model is put in eval mode for the call (under `torch.no_grad`, not `inference_mode`, so
that no buffer a model updates lazily becomes an inference tensor the trainer could not backpropagate
through) and every module's train/eval flag is restored afterwards.
`seed` makes sampling reproducible: the same prompts, parameters and seed give the same samples.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from openrft.engines import kv
from openrft.engines.base import EngineError, Messages, Sample, SamplingParams
from openrft.engines.constraints import Constraint, ConstraintSpec, enum_sites, vocabulary
from openrft.engines.reasoning import has_native_thinking, reasoning_token_count, render_prompt, split_completion
from openrft.engines.sampling import item_streams, sampling_logprobs, unpack_bitmask
from openrft.engines.structured import Grammars, ThinkFormat, parse_answer, response_schema, structural_tag
from openrft.engines.tools import ToolUse, answer_and_calls, check_tools_grammar, strip_special_tokens, tool_use


@dataclass
class _Prompt:
    index: int  # position in the caller's batch
    token_ids: list[int]
    think: ThinkFormat | None


class TransformersEngine:
    """Samples from a transformers causal LM (or a peft model over one); see the module docstring."""

    def __init__(self, model, tokenizer, *, model_name: str = "", max_batch_rows: int = 64,
                 share_prefix: bool = True, share_instructions: bool = True, progress: bool = False):
        self.model = model
        self.tokenizer = tokenizer
        self.model_name = model_name or getattr(getattr(model, "config", None), "name_or_path", "") or "model"
        self.max_batch_rows = max_batch_rows  # sequences (prompts x n) decoded together
        self.share_prefix = share_prefix and kv.supports_shared_prefix(model)
        self.share_instructions = share_instructions and self.share_prefix
        self.progress = progress
        self.stop_token_ids = _stop_token_ids(model, tokenizer)
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_token_ids[0]
        self.native_thinking = has_native_thinking(tokenizer)
        self._grammars: Grammars | None = None

    @classmethod
    def from_name(cls, model: str, device: str = "cpu", dtype: str | None = None, **options) -> "TransformersEngine":
        """Load a model by name (see openrft.models: 'default', a HF directory, a .gguf file, a checkpoint)."""
        from openrft.models import load_model

        dtype = dtype or default_dtype(device)
        loaded, tokenizer = load_model(model, dtype=dtype, device=device)
        if hasattr(loaded, "merge_and_unload"):  # an adapter checkpoint: sample from the merged weights (faster)
            loaded = loaded.merge_and_unload()
        loaded.eval()
        return cls(loaded, tokenizer, model_name=str(model), **options)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    def grammars(self) -> Grammars:
        if self._grammars is None:
            self._grammars = Grammars(self.tokenizer, self.vocab_size, self.stop_token_ids)
        return self._grammars

    def constraint_spec(self, schema: dict | None, think: ThinkFormat | None,
                        tools: ToolUse | None = None) -> ConstraintSpec | None:
        """The constraint of completions under `schema`, `think` and `tools` (None: nothing to constrain)."""
        tag = structural_tag(schema, think, tools)
        if tag is None:
            return None
        return ConstraintSpec(json.dumps(tag, sort_keys=True), json.dumps(schema) if schema is not None else None,
                              think.end if think is not None else None,
                              tool_calls=tools is not None and tools.prompted)

    def constraints(self, spec: ConstraintSpec, count: int) -> list[Constraint]:
        """`count` fresh constraints of `spec`, one per completion."""
        vocab = vocabulary(self.tokenizer, self.vocab_size)
        sites = enum_sites(json.loads(spec.schema) if spec.schema else None, vocab)
        return [Constraint(matcher, vocab, sites, spec.answer_after, spec.tool_calls)
                for matcher in self.grammars().matchers(json.loads(spec.tag), count)]

    def replay_masks(self, sample: Sample) -> torch.Tensor | None:
        """The allowed-token mask [completion tokens, vocab] (bool) each token of `sample` was drawn under,
        rebuilt by replaying the constraint recorded on the sample; None when it was unconstrained.

        The trainer passes these masks to `sampling_logprobs`. Raises EngineError when a token of the sample
        is not allowed by its constraint (a sample this engine did not draw, or drew under other rules).
        """
        if sample.constraint is None or not sample.token_ids:
            return None
        constraint = self.constraints(sample.constraint, 1)[0]
        bitmask = self.grammars().allocate_bitmask(len(sample.token_ids))
        for step, token in enumerate(sample.token_ids):
            constraint.fill(bitmask, step)
            if not (int(bitmask[step, token // 32]) >> (token % 32)) & 1 or not constraint.accept(token):
                raise EngineError(f"replaying a sample's grammar: token {token} at position {step} is not allowed")
            if constraint.is_terminated():
                break
        return unpack_bitmask(bitmask, self.vocab_size)

    # --- the Engine protocol ---
    def generate(self, prompts: list[Messages], params: SamplingParams) -> list[list[Sample]]:
        _check_params(params)
        schema = response_schema(params.response_format)
        tools = tool_use(params.tools, params.tool_choice, params.parallel_tool_calls)
        if tools is not None and (tools.constrained or (tools.prompted and schema is not None)):
            check_tools_grammar(tools)
        rendered = []
        for i, messages in enumerate(prompts):
            text, think = render_prompt(self.tokenizer, messages, params.reasoning_effort,
                                        native=self.native_thinking, tools=tools)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            rendered.append(_Prompt(i, ids, think))
        seed = params.seed if params.seed is not None else int(torch.randint(0, 2**62, ()).item())
        streams = item_streams(seed, [p.token_ids for p in rendered], params.n)
        per_group = max(1, self.max_batch_rows // params.n)
        groups = [rendered[i:i + per_group] for i in range(0, len(rendered), per_group)]
        results: list[list[Sample]] = [[] for _ in prompts]
        started = time.perf_counter()
        steps = len(groups) * params.max_tokens  # progress: decoding steps, at most max_tokens per group
        with self._progress(steps) as advance, _eval_mode(self.model), torch.no_grad():
            attention = kv.shared_prefix_attention(self.model) if self.share_prefix else nullcontext()
            with attention:
                instructions = self._instructions(rendered)
                for number, group in enumerate(groups, start=1):
                    group_streams = [streams[p.index * params.n + k] for p in group for k in range(params.n)]
                    for prompt, samples in zip(group, self._generate_group(group, params, schema, tools,
                                                                           group_streams, advance, instructions)):
                        results[prompt.index] = samples
                    advance(completed=number * params.max_tokens)
        latency = time.perf_counter() - started
        for samples in results:
            for sample in samples:
                sample.latency_s = latency
        return results

    def _instructions(self, prompts: list[_Prompt]) -> kv.Instructions | None:
        """The call's shared leading tokens, prefilled once (None: fewer than two prompts, nothing shared, or
        sharing off)."""
        length = kv.common_prefix_length([p.token_ids for p in prompts]) if self.share_instructions else 0
        if length == 0:
            return None
        device = self.device
        ids = torch.tensor([prompts[0].token_ids[:length]], device=device)
        cache = kv.SharedPrefixCache(_num_layers(self.model), 1, 1, torch.ones((1, length), dtype=torch.bool))
        self.model(input_ids=ids, position_ids=torch.arange(length, device=device)[None], cache=cache,
                   use_cache=True, logits_to_keep=1)
        return kv.Instructions.of(cache)

    # --- one group of prompts, decoded together ---
    def _generate_group(self, group: list[_Prompt], params: SamplingParams, schema: dict | None,
                        tools: ToolUse | None, streams: list, advance,
                        instructions: kv.Instructions | None = None) -> list[list[Sample]]:
        device, n = self.device, params.n
        rows = len(group) * n
        shared = 0 if instructions is None else instructions.length  # prompt tokens already in the cache
        width = max(len(p.token_ids) for p in group) - shared
        input_ids = torch.full((len(group), width), self.pad_token_id, dtype=torch.long)
        prompt_mask = torch.zeros((len(group), width), dtype=torch.bool)
        for i, prompt in enumerate(group):
            own = prompt.token_ids[shared:]
            input_ids[i, width - len(own):] = torch.tensor(own)
            prompt_mask[i, width - len(own):] = True
        input_ids, prompt_mask = input_ids.to(device), prompt_mask.to(device)
        positions = shared + (prompt_mask.long().cumsum(-1) - 1).clamp(min=0)
        next_position = shared + prompt_mask.sum(-1).repeat_interleave(n)  # [rows] position of the first new token

        # One constraint per sample (all prompts of a call share reasoning format, schema and tools).
        spec = self.constraint_spec(schema, group[0].think, tools)
        constraints = self.constraints(spec, rows) if spec is not None else None
        bitmask = self.grammars().allocate_bitmask(rows) if constraints is not None else None

        max_new = params.max_tokens
        out_tokens = torch.full((rows, max_new), self.pad_token_id, dtype=torch.long)
        out_logprobs = torch.zeros((rows, max_new), dtype=torch.float32)
        lengths = torch.zeros(rows, dtype=torch.long)
        finish = ["length"] * rows
        errors: list[str | None] = [None] * rows
        done = torch.zeros(rows, dtype=torch.bool)
        stop_ids = torch.tensor(self.stop_token_ids, device=device)

        live = torch.arange(rows)  # the sample rows still in the batch (whole prompt groups)
        cache = self._prefill_cache(prompt_mask, n, max_new, instructions)
        logits = self._forward(input_ids, positions, cache, prompt_mask=prompt_mask, shared=shared)
        logits = logits.repeat_interleave(n, dim=0)
        if self.share_prefix:
            cache.start_decoding()
        else:
            cache.batch_repeat_interleave(n)
            attention_mask = prompt_mask.long().repeat_interleave(n, dim=0)

        for step in range(max_new):
            allowed = None
            if constraints is not None:
                assert bitmask is not None  # allocated together with constraints
                live_list = live.tolist()
                for j, row in enumerate(live_list):
                    if not done[row]:
                        constraints[row].fill(bitmask, j)
                    else:
                        bitmask[j].fill_(-1)  # finished rows: anything (their tokens are discarded)
                allowed = bitmask[: len(live_list)]
            banned = stop_ids if constraints is None and step < params.min_tokens else None
            uniforms = [streams[row].random() for row in live.tolist()]
            tokens, chosen_logprobs = self._draw(logits, params, uniforms, allowed=allowed, banned=banned)
            advance()

            live_done = done[live]
            writing = live[~live_done]
            out_tokens[writing, step] = tokens[~live_done.to(tokens.device)].cpu()
            out_logprobs[writing, step] = chosen_logprobs[~live_done.to(tokens.device)].float().cpu()
            lengths[writing] += 1
            is_stop = torch.isin(tokens, stop_ids).cpu()
            for j in torch.nonzero(~live_done, as_tuple=False)[:, 0].tolist():
                row = int(live[j])
                if constraints is not None and not constraints[row].accept(int(tokens[j])):
                    errors[row] = f"the grammar rejected token {int(tokens[j])}"
                    finish[row], done[row] = "error", True
                elif is_stop[j] or (constraints is not None and constraints[row].is_terminated()):
                    finish[row], done[row] = "stop", True
            if bool(done.all()) or step == max_new - 1:
                break

            # Prompt groups whose samples have all finished leave the batch.
            group_done = done[live].view(-1, n).all(dim=1)
            if bool(group_done.any()):
                keep_groups = torch.nonzero(~group_done, as_tuple=False)[:, 0]
                keep_rows = (keep_groups[:, None] * n + torch.arange(n)).reshape(-1)
                live = live[keep_rows]
                tokens = tokens[keep_rows.to(tokens.device)]
                if self.share_prefix:
                    cache.keep(keep_groups.to(device))
                else:
                    cache.batch_select_indices(keep_rows.to(device))
                    attention_mask = attention_mask[keep_rows.to(device)]
            step_positions = (next_position[live] + step).to(device)[:, None]
            if self.share_prefix:
                logits = self._forward(tokens[:, None], step_positions, cache)
                cache.advance()
            else:
                attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(live), 1))], dim=1)
                logits = self._forward(tokens[:, None], step_positions, cache, attention_mask=attention_mask)

        return self._samples(group, params, schema, tools, spec, out_tokens, out_logprobs, lengths, finish, errors)

    def _draw(self, logits: torch.Tensor, params: SamplingParams, uniforms: list[float], *,
              allowed: torch.Tensor | None = None, banned: torch.Tensor | None = None):
        """The next token of each row and its log-probability under the sampling distribution.

        The distribution is `sampling_logprobs` of the logits with the constraint's packed bitmask
        (`allowed`) and the suppressed end of sequence (`banned`, token ids) as its mask. The draw inverts
        the cumulative distribution with the row's own uniform number, an order of magnitude faster on CPU
        than `torch.multinomial` over a 50k vocabulary. Greedy at temperature 0.
        """
        mask = None
        if allowed is not None:
            mask = unpack_bitmask(allowed.to(logits.device), logits.shape[-1])
        if banned is not None:
            mask = torch.ones_like(logits, dtype=torch.bool) if mask is None else mask
            mask[:, banned] = False
        logprobs = sampling_logprobs(logits, temperature=params.temperature, top_p=params.top_p, allowed=mask)
        if params.temperature == 0:
            tokens = logprobs.argmax(dim=-1)
        else:
            cumulative = logprobs.exp().cumsum_(dim=-1)
            uniform = torch.tensor(uniforms, dtype=cumulative.dtype, device=cumulative.device)[:, None]
            target = (uniform * cumulative[:, -1:]).clamp_(min=torch.finfo(torch.float32).tiny)
            tokens = torch.searchsorted(cumulative, target)[:, 0].clamp_(max=cumulative.shape[-1] - 1)
        return tokens, logprobs.gather(1, tokens[:, None])[:, 0]

    def _prefill_cache(self, prompt_mask, n: int, max_new: int, instructions: kv.Instructions | None):
        if self.share_prefix:
            return kv.SharedPrefixCache(_num_layers(self.model), n, max_new, prompt_mask, instructions)
        from transformers import DynamicCache

        return DynamicCache()

    def _forward(self, input_ids, positions, cache, *, prompt_mask=None, attention_mask=None,
                 shared: int = 0) -> torch.Tensor:
        """Logits of the last position of each row: [rows, vocab]. `shared`: how many instruction tokens the
        prompts' prefill attends to before their own (all of them, by every row)."""
        if prompt_mask is not None and self.share_prefix:
            rows, width = prompt_mask.shape
            causal = torch.ones((width, width), dtype=torch.bool, device=prompt_mask.device).tril()
            mask = causal[None] & prompt_mask[:, None, :]
            mask |= torch.eye(width, dtype=torch.bool, device=prompt_mask.device)[None]  # padding sees itself
            if shared:
                mask = torch.cat([mask.new_ones((rows, width, shared)), mask], dim=2)
            attention_mask = mask[:, None]
        elif prompt_mask is not None:
            attention_mask = prompt_mask.long()
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                         cache=cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1]

    def _samples(self, group, params, schema, tools, spec, out_tokens, out_logprobs, lengths, finish,
                 errors) -> list[list[Sample]]:
        results = []
        for g, prompt in enumerate(group):
            samples = []
            for k in range(params.n):
                row = g * params.n + k
                length = int(lengths[row])
                ids = out_tokens[row, :length].tolist()
                text_ids = ids[:-1] if ids and ids[-1] in self.stop_token_ids else ids
                # special tokens are kept to find the think tags and the tool-call markers (special tokens of
                # some models), then dropped
                keep_special = prompt.think is not None or (tools is not None and tools.prompted)
                text = self.tokenizer.decode(text_ids, skip_special_tokens=not keep_special)
                reasoning, answer = split_completion(text, prompt.think)
                if keep_special:
                    answer = strip_special_tokens(self.tokenizer, answer)
                answer, calls = answer_and_calls(answer, tools, seed=f"{params.seed}:{prompt.index}:{k}:{ids}")
                output_json, parse_error = parse_answer(answer, schema) if not calls else (None, None)
                samples.append(Sample(
                    prompt_index=prompt.index, output_text=answer, output_json=output_json, output_tools=calls,
                    reasoning_text=reasoning, token_ids=ids, logprobs=out_logprobs[row, :length].tolist(),
                    prompt_token_ids=list(prompt.token_ids), prompt_tokens=len(prompt.token_ids),
                    completion_tokens=length, reasoning_tokens=reasoning_token_count(self.tokenizer, ids, prompt.think),
                    finish_reason=finish[row], parse_error=parse_error, error=errors[row], model=self.model_name,
                    constraint=spec))
            results.append(samples)
        return results

    @contextmanager
    def _progress(self, total: int):
        """A rich progress bar over decoding steps when `progress` is on; yields `advance(completed=None)`."""
        if not self.progress:
            yield lambda completed=None: None  # noqa: ARG005 - same signature as `advance` below
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("sampling"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                      TimeElapsedColumn(), transient=True) as bar:
            task = bar.add_task("sampling", total=total)

            def advance(completed: int | None = None) -> None:
                if completed is None:
                    bar.advance(task)
                else:
                    bar.update(task, completed=completed)

            yield advance


def default_dtype(device: str) -> str:
    """fp32 on CPU unless it computes bf16 natively (AVX512-BF16/AMX); bf16 on a GPU that supports it."""
    if str(device).startswith("cuda"):
        return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"


def _check_params(params: SamplingParams) -> None:
    if params.n < 1:
        raise EngineError(f"n: expected at least 1, got {params.n}")
    if params.max_tokens < 1:
        raise EngineError(f"max_tokens: expected at least 1, got {params.max_tokens}")
    if params.temperature < 0:
        raise EngineError(f"temperature: expected >= 0, got {params.temperature}")
    if not 0 < params.top_p <= 1:
        raise EngineError(f"top_p: expected a value in (0, 1], got {params.top_p}")


def _stop_token_ids(model, tokenizer) -> list[int]:
    ids = []
    config = getattr(model, "generation_config", None)
    for value in (getattr(config, "eos_token_id", None), tokenizer.eos_token_id):
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None and int(item) not in ids:
                ids.append(int(item))
    if not ids:
        raise EngineError("the tokenizer has no end-of-sequence token: cannot tell when a sample ends")
    return ids


def _num_layers(model) -> int:
    config = model.config
    config = getattr(config, "get_text_config", lambda: config)()
    return int(config.num_hidden_layers)


@contextmanager
def _eval_mode(model):
    """Eval mode for the call; every module's own train/eval flag is restored afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
