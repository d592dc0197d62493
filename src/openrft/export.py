"""`openrft export`: a fine-tuned checkpoint in the formats it is deployed with.

- `hf`: the LoRA merged into its base (peft `merge_and_unload`), saved as a standalone transformers folder
  with the tokenizer and its chat template;
- `gguf`: one llama.cpp file written with the `gguf` package's `GGUFWriter` (f32, f16 or Q8_0), with the
  architecture's hyperparameters, the BPE tokenizer (tokens, types, merges, special ids) and the chat
  template, plus an Ollama `Modelfile` beside it. Llama-architecture models only (SmolLM2 is one);
- `adapter`: the PEFT adapter folder as vLLM's LoRA serving reads it (`adapter_config.json` naming the base
  model, `adapter_model.safetensors`).

MODEL is anything `openrft.models.resolve_model` understands (an `ft:` name, a checkpoint directory), or a
run directory (its `checkpoints/final`, else its newest `step-N`). Every output is written under a
`.partial` name and renamed into place, after checking that the disk has room for it.
"""

from __future__ import annotations

import errno
import functools
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from openrft.errors import OpenRFTError
from openrft.models import DEFAULT_MODEL, ModelError, ModelRef, resolve_model
from openrft.runs import RunFileError, checkpoint_dir, final_dir, is_job_dir, list_checkpoints, load_job
from openrft.runs.checkpoints import has_model, read_record

FORMATS = ("hf", "gguf", "adapter")
QUANTS = ("f32", "f16", "q8_0")
GGUF_ARCHITECTURES = ("llama",)  # config.model_type values whose tensors map onto llama.cpp's LLAMA graph
DISK_MARGIN_BYTES = 64 * 2**20
# adapter_config.json keys that PEFT has read since 0.6 and vLLM's PEFTHelper knows; every other key is dropped
# when it holds PEFT's default value (and refused when it does not: the adapter would lose a feature).
ADAPTER_KEYS = ("peft_type", "task_type", "base_model_name_or_path", "revision", "r", "lora_alpha", "lora_dropout",
                "target_modules", "bias", "fan_in_fan_out", "use_rslora", "use_dora", "modules_to_save",
                "inference_mode", "init_lora_weights", "layers_to_transform", "layers_pattern", "rank_pattern",
                "alpha_pattern")
VLLM_MAX_LORA_RANK = 512  # the largest --max-lora-rank vLLM accepts

console = Console(stderr=True)


class ExportError(OpenRFTError):
    """An export that cannot be done; the message says why and names the path."""


@dataclass
class ExportResult:
    format: str
    path: Path  # the folder (hf, adapter) or the .gguf file
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


# --- which checkpoint ---

def resolve_checkpoint(model: str | Path) -> ModelRef:
    """The model to export: a name `resolve_model` understands, or a run directory's final/newest checkpoint."""
    path = Path(str(model)).expanduser()
    if path.is_dir() and is_job_dir(path):
        path = _run_checkpoint(path)
    try:
        return resolve_model(str(path) if path.exists() else str(model))
    except ModelError as exc:
        raise ExportError(str(exc)) from exc


def _run_checkpoint(run_dir: Path) -> Path:
    """The final model of a run, else its newest complete checkpoint."""
    if has_model(final_dir(run_dir)):
        return final_dir(run_dir)
    records = list_checkpoints(run_dir)  # newest step first
    if not records:
        raise ExportError(f"{run_dir}: this run has no checkpoint yet (no checkpoints/final, no checkpoints/step-N)")
    return checkpoint_dir(run_dir, records[0].step_number)


def base_model_name(ref: ModelRef) -> str:
    """How a deployment names the base model: the hub id of the embedded model, else the base's folder."""
    base = ref.base if ref.base is not None else ref
    if base.kind == "embedded":
        return f"HuggingFaceTB/{DEFAULT_MODEL}"
    return str(base.path.resolve())


def merged_model(ref: ModelRef):
    """(model, tokenizer) in float32 on the CPU, the LoRA (if any) merged into the base weights."""
    from openrft.models import load_model

    model, tokenizer = load_model(ref.name)
    if ref.kind == "adapter":
        model = model.merge_and_unload()
    model.eval()
    return model, tokenizer


# --- disk space and atomic outputs ---

def check_free_space(target: Path, needed_bytes: int) -> None:
    """Raise ExportError when the filesystem of `target` has less than `needed_bytes` (+ a margin) free."""
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < needed_bytes + DISK_MARGIN_BYTES:
        raise ExportError(f"not enough free disk space in {folder}: the export needs about "
                          f"{_mb(needed_bytes + DISK_MARGIN_BYTES)}, {_mb(free)} is free")


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _prepare_target(out: Path, force: bool) -> Path:
    """The `.partial` path to write into; refuses to replace an existing output unless `force`."""
    if out.exists() and not force:
        raise ExportError(f"{out} exists: give another --out, or --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    _remove(tmp)
    return tmp


def _finish(tmp: Path, out: Path) -> None:
    _remove(out)
    tmp.rename(out)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _disk_full(exc: BaseException, out: Path) -> ExportError:
    return ExportError(f"{out}: the disk filled up while writing ({exc}); nothing was left behind")


def is_disk_full(exc: BaseException) -> bool:
    """An OSError ENOSPC/EDQUOT, or a writer's own error wrapping one (safetensors raises SafetensorError)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "os error 28" in text or "Disk quota exceeded" in text


def _written(tmp: Path, out: Path, write) -> None:
    """Run `write()` into `tmp`, then rename it to `out`; a failure (a full disk included) removes `tmp`."""
    try:
        write()
        _finish(tmp, out)
    except BaseException as exc:
        _remove(tmp)
        if is_disk_full(exc):
            raise _disk_full(exc, out) from exc
        raise


# --- hf ---

def export_hf(ref: ModelRef, out: Path, *, quant: str = "f32", force: bool = False) -> ExportResult:
    """The merged model as a transformers folder (safetensors, config, tokenizer, chat template)."""
    import torch

    if quant not in ("f32", "f16"):
        raise ExportError(f"--quant {quant}: the hf format is written in f32 or f16 (q8_0 is for gguf)")
    started = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task("merging the LoRA", total=2)
        model, tokenizer = merged_model(ref)
        bar.advance(task)
        if quant == "f16":
            model = model.to(torch.float16)
        needed = sum(p.numel() * p.element_size() for p in model.parameters())
        check_free_space(out, needed)
        tmp = _prepare_target(out, force)
        bar.update(task, description=f"writing {out.name}")

        def write() -> None:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            _write_json(tmp / "openrft_export.json", {"format": "hf", "source": str(ref.path), "dtype": quant,
                                                       "base_model": base_model_name(ref)})

        _written(tmp, out, write)
        bar.advance(task)
    return ExportResult("hf", out, sorted(p for p in out.rglob("*") if p.is_file()), time.perf_counter() - started)


# --- adapter ---

def export_adapter(ref: ModelRef, out: Path, *, force: bool = False) -> ExportResult:
    """The LoRA adapter as vLLM loads it: a clean adapter_config.json and adapter_model.safetensors."""
    if ref.kind != "adapter":
        raise ExportError(f"{ref.name}: not a LoRA checkpoint (the adapter format needs one; "
                          "export a full model with --format hf or gguf)")
    started = time.perf_counter()
    weights = ref.path / "adapter_model.safetensors"
    if not weights.is_file():
        raise ExportError(f"{ref.path}: no adapter_model.safetensors in this checkpoint")
    config = adapter_config(json.loads((ref.path / "adapter_config.json").read_text()), base_model_name(ref))
    problems = vllm_adapter_problems(config, _safetensors_keys(weights))
    if problems:
        raise ExportError(f"{ref.path}: vLLM would refuse this adapter: " + "; ".join(problems))
    check_free_space(out, weights.stat().st_size)
    tmp = _prepare_target(out, force)

    def write() -> None:
        tmp.mkdir()
        shutil.copyfile(weights, tmp / "adapter_model.safetensors")
        _write_json(tmp / "adapter_config.json", config)

    with _progress() as bar:
        task = bar.add_task(f"writing {out.name}", total=1)
        _written(tmp, out, write)
        bar.advance(task)
    return ExportResult("adapter", out, sorted(p for p in out.iterdir() if p.is_file()), time.perf_counter() - started)


def adapter_config(config: dict, base_model: str) -> dict:
    """The checkpoint's adapter config reduced to ADAPTER_KEYS, naming `base_model`, for inference."""
    from peft import LoraConfig

    if config.get("peft_type") != "LORA":
        raise ExportError(f"adapter_config.json: peft_type {config.get('peft_type')!r}; only LoRA adapters export")
    defaults = LoraConfig().to_dict()
    kept = {key: config[key] for key in ADAPTER_KEYS if key in config}
    lost = sorted(key for key, value in config.items()
                  if key not in ADAPTER_KEYS and key in defaults and _plain(value) != _plain(defaults[key]))
    if lost:
        raise ExportError(f"adapter_config.json: {', '.join(lost)} set to non-default values, which vLLM's LoRA "
                          "loader does not read")
    kept.update(base_model_name_or_path=base_model, inference_mode=True)
    if isinstance(kept.get("target_modules"), (set, tuple)):
        kept["target_modules"] = sorted(kept["target_modules"])
    return kept


def _plain(value):
    return sorted(value) if isinstance(value, (set, frozenset)) else value


def vllm_adapter_problems(config: dict, weight_keys: list[str]) -> list[str]:
    """What vLLM's PEFTHelper and LoRA loader refuse in an adapter (empty when it loads)."""
    problems = []
    if config.get("peft_type", "LORA") != "LORA":
        problems.append(f"peft_type {config.get('peft_type')!r} is not LORA")
    for key in ("r", "lora_alpha", "target_modules"):
        if key not in config:
            problems.append(f"{key} is missing")
    if int(config.get("r") or 0) > VLLM_MAX_LORA_RANK:
        problems.append(f"rank {config['r']} is above vLLM's largest max_lora_rank {VLLM_MAX_LORA_RANK}")
    if config.get("bias", "none") != "none":
        problems.append(f"bias {config['bias']!r}: vLLM loads adapters without bias only")
    if config.get("use_dora"):
        problems.append("use_dora: vLLM does not support DoRA")
    if config.get("modules_to_save"):
        problems.append("modules_to_save: vLLM supports modules_to_save being None only")
    odd = [k for k in weight_keys if not (".lora_A." in k or ".lora_B." in k)]
    if odd:
        problems.append(f"weights that are not LoRA A/B matrices: {', '.join(odd[:3])}")
    return problems


def _safetensors_keys(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return list(f.keys())


# --- gguf ---

def export_gguf(ref: ModelRef, out: Path, *, quant: str = "f16", force: bool = False) -> ExportResult:
    """The merged model as one GGUF file (llama architecture) and an Ollama Modelfile beside it."""
    import tempfile

    import gguf

    if quant not in QUANTS:
        raise ExportError(f"--quant {quant}: expected one of {', '.join(QUANTS)}")
    if out.suffix != ".gguf":
        out = out / f"model-{quant}.gguf" if (out.is_dir() or not out.suffix) else out.with_suffix(".gguf")
    started = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task("merging the LoRA", total=None)
        model, tokenizer = merged_model(ref)
        config = model.config
        if config.model_type not in GGUF_ARCHITECTURES:
            raise ExportError(f"{ref.name}: architecture {config.model_type!r} "
                              f"({', '.join(config.architectures or [])})"
                              f" is not supported by the GGUF export; supported: {', '.join(GGUF_ARCHITECTURES)}. "
                              "Use --format hf or adapter.")
        state = {name: tensor for name, tensor in model.state_dict().items()
                 if not (name == "lm_head.weight" and config.tie_word_embeddings)}
        bar.update(task, total=len(state), completed=0, description=f"converting tensors to {quant}")
        tensors = []
        for name, tensor in state.items():
            tensors.append(gguf_tensor(name, tensor.detach().float().numpy(), config, quant))
            bar.advance(task)
        needed = sum(data.nbytes for _, data, _ in tensors) + 16 * 2**20  # + vocabulary and metadata
        modelfile = out.with_name("Modelfile")
        check_free_space(out, needed)
        tmp = _prepare_target(out, force)
        if modelfile.exists() and not force:
            raise ExportError(f"{modelfile} exists: give another --out, or --force to replace it")
        bar.update(task, description=f"writing {out.name}")
        with tempfile.TemporaryDirectory() as tok_dir:
            tokenizer.save_pretrained(tok_dir)

            def write() -> None:
                writer = gguf.GGUFWriter(str(tmp), "llama")
                add_metadata(writer, config, quant, name=_model_title(ref))
                add_tokenizer(writer, tokenizer, Path(tok_dir), config.vocab_size,
                              pre=tokenizer_pre(ref, Path(tok_dir)))
                for name, data, qtype in tensors:
                    writer.add_tensor(name, data, raw_dtype=qtype)
                writer.write_header_to_file()
                writer.write_kv_data_to_file()
                writer.write_tensors_to_file()
                writer.close()

            _written(tmp, out, write)
        modelfile.write_text(ollama_modelfile(out.name, tokenizer))
    return ExportResult("gguf", out, [out, modelfile], time.perf_counter() - started)


def _model_title(ref: ModelRef) -> str:
    """general.name: the ft: name given, else the checkpoint's or its run's fine-tuned model name, else the folder."""
    if ref.name.startswith("ft:"):
        return ref.name
    record = read_record(ref.path)
    if record is not None:
        return record.fine_tuned_model_checkpoint
    run_dir = ref.path.parent.parent  # <run dir>/checkpoints/<step-N or final>
    if is_job_dir(run_dir):
        try:
            name = load_job(run_dir).fine_tuned_model
        except RunFileError:
            name = None
        if name:
            return name
    return ref.path.resolve().name


def gguf_tensor(hf_name: str, data, config, quant: str):
    """(GGUF name, array, GGMLQuantizationType) of one transformers Llama tensor, as llama.cpp's converter
    writes it: q/k rows permuted to llama.cpp's rotary layout, 1-D tensors in f32, 2-D ones in `quant`."""
    import gguf
    import numpy as np

    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise ExportError(f"tensor {hf_name}: no llama.cpp name for it (unsupported model layout)")
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    if hf_name.endswith("q_proj.weight"):
        data = permute_rotary(data, heads)
    elif hf_name.endswith("k_proj.weight"):
        data = permute_rotary(data, kv_heads)
    data = np.ascontiguousarray(data, dtype=np.float32)
    if data.ndim <= 1 or quant == "f32":
        return name, data, gguf.GGMLQuantizationType.F32
    if quant == "q8_0":
        try:
            return name, gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0
        except gguf.quants.QuantError:  # rows not a multiple of the block size: f16, as llama.cpp's converter does
            pass
    return name, data.astype(np.float16), gguf.GGMLQuantizationType.F16


def permute_rotary(weights, n_head: int):
    """transformers' q/k projection rows (rotary halves) in llama.cpp's order (interleaved pairs)."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def add_metadata(writer, config, quant: str, *, name: str) -> None:
    """general.* and llama.* keys: the hyperparameters llama.cpp reads for a Llama graph."""
    import gguf

    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "linear"):
        raise ExportError(f"rope scaling {rope_type!r} is not supported by the GGUF export (default and linear are)")
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.num_key_value_heads or heads)
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_rope_freq_base(float(theta))
    if rope_type == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                          "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[quant])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def add_tokenizer(writer, tokenizer, tokenizer_dir: Path, vocab_size: int, *, pre: str) -> None:
    """The byte-level BPE vocabulary as llama.cpp's `gpt2` tokenizer model: tokens, types, merges, special ids
    and the chat template (the last three read by gguf's SpecialVocab from the saved tokenizer files)."""
    import gguf

    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise ExportError("the GGUF export needs a fast (tokenizer.json) byte-level BPE tokenizer")
    model_type = json.loads((tokenizer_dir / "tokenizer.json").read_text()).get("model", {}).get("type")
    if model_type != "BPE":
        raise ExportError(f"tokenizer model {model_type!r}: the GGUF export writes byte-level BPE (gpt2) tokenizers")
    tokens, types = vocabulary(tokenizer, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(tokenizer_dir, load_merges=True, n_vocab=len(tokens))
    if not special.merges:
        raise ExportError("the tokenizer has no BPE merges")
    special.add_to_gguf(writer)


def vocabulary(tokenizer, vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens by id and their llama.cpp token types, as convert_hf_to_gguf.py's get_vocab_base computes them."""
    import gguf

    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = tokenizer.get_added_vocab()
    decoder = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for index in range(vocab_size):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif by_id[index] in added:
            tokens.append(by_id[index])
            special = decoder[index].special if index in decoder else False
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.NORMAL)
    return tokens, [int(t) for t in types]


LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")


def tokenizer_pre(ref: ModelRef, tokenizer_dir: Path | None = None) -> str:
    """llama.cpp's pre-tokenizer name (`tokenizer.ggml.pre`): the one of the GGUF file the base model was
    converted from (the embedded model's: `smollm`), else the one `tokenizer.json`'s pre_tokenizer matches."""
    base = ref.base if ref.base is not None else ref
    source = base.path / "openrft_source.json"
    if source.is_file():
        gguf_file = Path(json.loads(source.read_text()).get("gguf", ""))
        if gguf_file.is_file():
            value = gguf_string(gguf_file, "tokenizer.ggml.pre")
            if value:
                return value
    folder = tokenizer_dir or base.path
    if not (folder / "tokenizer.json").is_file():
        return "default"
    return pre_tokenizer_name(json.loads((folder / "tokenizer.json").read_text()).get("pre_tokenizer") or {})


def pre_tokenizer_name(pre: dict) -> str:
    """The llama.cpp pre-tokenizer of a tokenizers `pre_tokenizer` object: gpt-2 (byte-level regex), smollm
    (digits split, then byte-level), llama-bpe (Llama 3's split), qwen2; `default` for any other (llama.cpp
    then splits as GPT-2 does, with a warning)."""
    parts: list[dict] = (pre.get("pretokenizers") if pre.get("type") == "Sequence" else [pre]) or []
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"]:
        pattern = (parts[0].get("pattern") or {}).get("Regex")
        names: dict[str | None, str] = {LLAMA3_SPLIT: "llama-bpe", QWEN2_SPLIT: "qwen2"}
        return names.get(pattern, "default")
    return "default"


def gguf_string(path: Path, key: str) -> str | None:
    """A string metadata value of a GGUF file, or None (read once per file version: parsing a whole
    vocabulary takes seconds)."""
    stat = path.stat()
    return _gguf_string(str(path.resolve()), stat.st_size, stat.st_mtime_ns, key)


@functools.lru_cache(maxsize=8)
def _gguf_string(path: str, size: int, mtime_ns: int, key: str) -> str | None:  # noqa: ARG001 - size, mtime_ns: cache key
    import gguf

    field = gguf.GGUFReader(path).get_field(key)
    return field.contents() if field is not None else None


# --- Ollama ---

# Ollama's ChatML template: with `.Messages` (chat) the Modelfile's SYSTEM is already the first message;
# `.System`/`.Prompt` are for plain generate requests.
CHATML_TEMPLATE = """{{- if .Messages }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ else }}
{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ end }}{{ .Response }}{{ if .Response }}<|im_end|>{{ end }}"""


def ollama_modelfile(gguf_name: str, tokenizer) -> str:
    """An Ollama Modelfile for the GGUF file beside it: FROM, the chat template as a Go TEMPLATE, stop tokens.

    Ollama's templates are Go templates, not Jinja: a ChatML chat template (SmolLM2's, Qwen's) is written as
    CHATML_TEMPLATE, and a default system prompt the Jinja template inserts becomes the SYSTEM line. Other
    templates are left to Ollama, which reads `tokenizer.chat_template` from the GGUF file.
    """
    lines = [f"FROM ./{gguf_name}"]
    chatml = chatml_default_system(tokenizer)
    if chatml is not None:
        lines.append(f'TEMPLATE """{CHATML_TEMPLATE}"""')
        if chatml:
            lines.append(f'SYSTEM """{chatml}"""')
        stops = ["<|im_end|>", "<|im_start|>"]
    else:
        lines.append("# the chat template is not ChatML: Ollama takes it from the GGUF's tokenizer.chat_template")
        stops = []
    if tokenizer.eos_token and tokenizer.eos_token not in stops:
        stops.append(tokenizer.eos_token)
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    return "\n".join(lines) + "\n"


def chatml_default_system(tokenizer) -> str | None:
    """None when the tokenizer's chat template is not ChatML; else the system prompt it adds when the
    conversation has none ('' when it adds none)."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    conversation = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                    {"role": "assistant", "content": "A"}]
    from jinja2 import TemplateError

    try:
        full = tokenizer.apply_chat_template(conversation, tokenize=False)
        bare = tokenizer.apply_chat_template([{"role": "user", "content": "U"}], tokenize=False,
                                             add_generation_prompt=True)
    except (TemplateError, ValueError, TypeError, KeyError):  # a template that refuses this conversation
        return None
    if full.strip() != ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
                        "<|im_start|>assistant\nA<|im_end|>"):
        return None
    tail = "<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    if bare == tail:
        return ""
    head = "<|im_start|>system\n"
    if bare.startswith(head) and bare.endswith("<|im_end|>\n" + tail):
        return bare[len(head):-len("<|im_end|>\n" + tail)]
    return None


# --- entry points ---

def export(model: str | Path, fmt: str, out: str | Path, *, quant: str | None = None,
           force: bool = False) -> ExportResult:
    """Export `model` in `fmt` ('hf', 'gguf' or 'adapter') to `out`; raises ExportError."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    ref = resolve_checkpoint(model)
    out = Path(out).expanduser()
    try:
        if fmt == "hf":
            return export_hf(ref, out, quant=quant or "f32", force=force)
        if fmt == "gguf":
            return export_gguf(ref, out, quant=quant or "f16", force=force)
        if quant:
            raise ExportError("--quant does not apply to --format adapter (the adapter is copied as trained)")
        return export_adapter(ref, out, force=force)
    except ModelError as exc:
        raise ExportError(str(exc)) from exc
    except OSError as exc:
        if is_disk_full(exc):
            raise _disk_full(exc, out) from exc
        raise


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def export_command(
    model: str = typer.Argument(..., help="an ft: model or checkpoint name, a checkpoint directory or a run directory"),
    fmt: str = typer.Option(..., "--format", "-f", help="hf (merged transformers folder), gguf (llama.cpp, Ollama) "
                                                        "or adapter (PEFT LoRA folder for vLLM)"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (hf, adapter) or .gguf file / folder (gguf)"),
    quant: str = typer.Option(None, "--quant", help="f32, f16 or q8_0 (gguf; default f16); f32 or f16 (hf)"),
    force: bool = typer.Option(False, "--force", help="replace an existing output"),
):
    """Export a fine-tuned checkpoint as a transformers folder, a GGUF file (+ Ollama Modelfile) or a vLLM adapter."""  # noqa: E501 - CLI help: a line break would show in `openrft --help`
    # an ExportError is one error line and exit status 2 (openrft.cli)
    result = export(model, fmt, out, quant=quant.lower() if quant else None, force=force)
    show = Console(soft_wrap=True)  # paths stay whole, so that they can be copied
    show.print(f"exported [bold]{escape(str(result.path))}[/] ({result.format}, {_mb(result.size_bytes)}, "
               f"{result.seconds:.1f} s)")
    for path in result.files:
        show.print(f"  {escape(str(path))}  {_mb(path.stat().st_size)}")
    if result.format == "adapter":
        config = json.loads((result.path / "adapter_config.json").read_text())
        show.print(escape(f"vLLM: vllm serve {config['base_model_name_or_path']} --enable-lora "
                          f"--max-lora-rank {max(16, int(config['r']))} "
                          f"--lora-modules {result.path.name}={result.path}"))
    elif result.format == "gguf":
        show.print(escape(f"llama.cpp: llama-server -m {result.path}    Ollama: cd {result.path.parent} && "
                          f"ollama create {result.path.stem} -f Modelfile"))
