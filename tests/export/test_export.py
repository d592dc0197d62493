"""`openrft export` round trips on a tiny random Llama with a LoRA checkpoint: the merged transformers folder,
the GGUF file (f32, f16, Q8_0) loaded back by transformers and read by gguf's reader, the vLLM adapter, and
the errors (exit 2) for a missing checkpoint, an unsupported architecture and a full disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from .conftest import greedy, logits


@pytest.fixture(scope="module")
def checkpoint_model(tiny_checkpoint):
    from openrft.models import load_model

    model, tokenizer = load_model(str(tiny_checkpoint))
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def checkpoint_answers(checkpoint_model):
    return greedy(*checkpoint_model)


def test_the_adapter_changes_the_answers(tiny_base, checkpoint_model, checkpoint_answers):
    """The round trips below would prove nothing if the LoRA did not change the model."""
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    assert greedy(base, checkpoint_model[1]) != checkpoint_answers


def test_hf_folder_loads_in_transformers_with_the_checkpoints_greedy_answers(tiny_checkpoint, checkpoint_model,
                                                                          checkpoint_answers, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from openrft.export import export

    result = export(tiny_checkpoint, "hf", tmp_path / "merged")
    assert result.path == tmp_path / "merged" and not (tmp_path / "merged.partial").exists()
    assert (result.path / "model.safetensors").is_file() and (result.path / "config.json").is_file()
    assert not (result.path / "adapter_config.json").exists()  # standalone: no adapter, no base model needed
    model = AutoModelForCausalLM.from_pretrained(result.path).eval()
    tokenizer = AutoTokenizer.from_pretrained(result.path)
    assert tokenizer.chat_template == checkpoint_model[1].chat_template
    assert greedy(model, tokenizer) == checkpoint_answers
    assert (logits(model, tokenizer) - logits(*checkpoint_model)).abs().max() < 1e-4


def read_fields(path: Path) -> dict:
    import gguf

    reader = gguf.GGUFReader(str(path))
    return {name: field.contents() for name, field in reader.fields.items()
            if not name.startswith("GGUF.")}, {t.name: t for t in reader.tensors}


@pytest.mark.parametrize("quant", ["f32", "f16"])
def test_gguf_loads_back_with_the_checkpoints_tensors_and_greedy_answers(quant, tiny_checkpoint, checkpoint_model,
                                                                         checkpoint_answers, tmp_path):
    import gguf
    import numpy as np
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from openrft.export import export, merged_model, permute_rotary, resolve_checkpoint

    result = export(tiny_checkpoint, "gguf", tmp_path / "out", quant=quant)
    assert result.path == tmp_path / "out" / f"model-{quant}.gguf"
    fields, tensors = read_fields(result.path)
    config = checkpoint_model[0].config
    assert fields["general.architecture"] == "llama"
    assert fields["llama.block_count"] == 2 and fields["llama.embedding_length"] == 64
    assert fields["llama.attention.head_count"] == 4 and fields["llama.attention.head_count_kv"] == 2
    assert fields["llama.feed_forward_length"] == 128 and fields["llama.context_length"] == 512
    assert fields["llama.rope.dimension_count"] == 16
    assert fields["llama.rope.freq_base"] == pytest.approx(config.rope_parameters["rope_theta"])
    tokenizer = checkpoint_model[1]
    assert fields["tokenizer.ggml.model"] == "gpt2"
    assert fields["tokenizer.ggml.pre"] == "gpt-2"  # the tiny tokenizer's pre_tokenizer: byte-level regex only
    assert len(fields["tokenizer.ggml.tokens"]) == len(tokenizer)
    assert fields["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    assert fields["tokenizer.chat_template"] == tokenizer.chat_template
    merges = json.loads((tiny_checkpoint / "tokenizer.json").read_text())["model"]["merges"]
    assert fields["tokenizer.ggml.merges"] == [" ".join(pair) for pair in merges] and len(merges) > 100
    # 9 tensors per block + embeddings + final norm; tied embeddings: no output.weight
    assert len(tensors) == 2 * 9 + 2 and "output.weight" not in tensors
    wanted = gguf.GGMLQuantizationType.F32 if quant == "f32" else gguf.GGMLQuantizationType.F16
    assert tensors["blk.0.attn_q.weight"].tensor_type == wanted
    assert tensors["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32

    # the merged q projection, permuted as llama.cpp reads it
    merged, _ = merged_model(resolve_checkpoint(str(tiny_checkpoint)))
    q = merged.model.layers[0].self_attn.q_proj.weight.detach().numpy()
    stored = np.asarray(tensors["blk.0.attn_q.weight"].data, dtype=np.float32).reshape(q.shape)
    np.testing.assert_allclose(stored, permute_rotary(q, 4), atol=1e-6 if quant == "f32" else 1e-3)

    # transformers loads the file back (it undoes the permutation) and builds the tokenizer from the metadata
    model = AutoModelForCausalLM.from_pretrained(result.path.parent, gguf_file=result.path.name).eval()
    gguf_tokenizer = AutoTokenizer.from_pretrained(result.path.parent, gguf_file=result.path.name)
    text = "Hello world! Ünïcode, numbers 12345 and <|im_start|>tags."
    assert gguf_tokenizer(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert greedy(model, tokenizer) == checkpoint_answers
    tolerance = 1e-4 if quant == "f32" else 5e-2
    assert (logits(model, tokenizer) - logits(*checkpoint_model)).abs().max() < tolerance

    modelfile = (result.path.parent / "Modelfile").read_text()
    assert modelfile.startswith(f"FROM ./model-{quant}.gguf\n")
    assert 'TEMPLATE """' in modelfile and "<|im_start|>{{ .Role }}" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in modelfile


def test_q8_0_gguf_difference_is_measured(tiny_checkpoint, checkpoint_model, checkpoint_answers, tmp_path,
                                          record_property, capsys):
    import gguf
    from transformers import AutoModelForCausalLM

    from openrft.export import export

    f32 = export(tiny_checkpoint, "gguf", tmp_path / "f32.gguf", quant="f32")
    q8 = export(tiny_checkpoint, "gguf", tmp_path / "q8" / "model.gguf", quant="q8_0")
    _, tensors = read_fields(q8.path)
    assert tensors["blk.1.ffn_down.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0
    assert tensors["token_embd.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0
    model = AutoModelForCausalLM.from_pretrained(q8.path.parent, gguf_file=q8.path.name).eval()
    reference = logits(*checkpoint_model)
    difference = (logits(model, checkpoint_model[1]) - reference).abs().max().item()
    answers = greedy(model, checkpoint_model[1])
    agreement = sum(a == b for x, y in zip(answers, checkpoint_answers) for a, b in zip(x, y)) / \
        sum(len(x) for x in checkpoint_answers)
    ratio = q8.path.stat().st_size / f32.path.stat().st_size
    record_property("q8_0_max_logit_difference", difference)
    record_property("q8_0_greedy_token_agreement", agreement)
    with capsys.disabled():
        print(f"\nQ8_0 vs checkpoint: max |logit difference| {difference:.4f} (logit range "
              f"{reference.min():.1f}..{reference.max():.1f}), greedy tokens agreeing {agreement:.0%}, "
              f"size {ratio:.2f} of f32")
    assert 0 < difference < 0.05 * (reference.max() - reference.min()).item()
    assert ratio < 0.4  # 8.5 bits per weight instead of 32
    assert agreement >= 0.5


def test_gguf_tokenizer_metadata_matches_llama_cpps_own_conversion(embedded_model, tmp_path):
    """The embedded SmolLM2 GGUF was written by llama.cpp's convert_hf_to_gguf.py: our vocabulary, token types,
    merges, special ids and pre-tokenizer for its tokenizer are the same as its own."""
    import gguf
    from transformers import AutoTokenizer

    from openrft.export import add_tokenizer, tokenizer_pre
    from openrft.models import embedded_gguf, resolve_model

    tokenizer = AutoTokenizer.from_pretrained(embedded_model)
    tokenizer.save_pretrained(tmp_path / "tok")
    writer = gguf.GGUFWriter(str(tmp_path / "vocab.gguf"), "llama")
    add_tokenizer(writer, tokenizer, tmp_path / "tok", len(tokenizer), pre=tokenizer_pre(resolve_model("default")))
    ours = {key: field.value for key, field in writer.kv_data[0].items()}
    theirs = {name: field.contents() for name, field in gguf.GGUFReader(str(embedded_gguf())).fields.items()}
    assert ours["tokenizer.ggml.pre"] == theirs["tokenizer.ggml.pre"] == "smollm"
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
                "tokenizer.ggml.padding_token_id", "tokenizer.chat_template"):
        assert ours.get(key) == theirs.get(key), key


def test_pre_tokenizer_names_follow_the_tokenizer_json():
    from openrft.export import LLAMA3_SPLIT, pre_tokenizer_name

    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    assert pre_tokenizer_name(byte_level) == "gpt-2"
    assert pre_tokenizer_name({"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, byte_level]}) == "smollm"
    assert pre_tokenizer_name({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}}, {**byte_level, "use_regex": False}]}) == "llama-bpe"
    assert pre_tokenizer_name({"type": "Metaspace"}) == "default"


def test_adapter_export_is_a_vllm_loadable_peft_folder(tiny_base, tiny_checkpoint, checkpoint_answers, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from openrft.export import ADAPTER_KEYS, export, vllm_adapter_problems

    result = export(tiny_checkpoint, "adapter", tmp_path / "lora")
    assert sorted(p.name for p in result.files) == ["adapter_config.json", "adapter_model.safetensors"]
    config = json.loads((result.path / "adapter_config.json").read_text())
    assert set(config) <= set(ADAPTER_KEYS)
    assert config["base_model_name_or_path"] == str(tiny_base.resolve())
    assert config["peft_type"] == "LORA" and config["r"] == 8 and config["inference_mode"] is True
    assert vllm_adapter_problems(config, ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]) == []
    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    model = PeftModel.from_pretrained(base, result.path).eval()
    assert greedy(model, AutoTokenizer.from_pretrained(tiny_base)) == checkpoint_answers
    # what vLLM refuses is reported
    assert vllm_adapter_problems({**config, "use_dora": True, "modules_to_save": ["lm_head"], "bias": "all"}, []) \
        == ["bias 'all': vLLM loads adapters without bias only", "use_dora: vLLM does not support DoRA",
            "modules_to_save: vLLM supports modules_to_save being None only"]


def test_embedded_base_names_its_hub_id(tiny_checkpoint, tmp_path):
    from openrft.export import base_model_name, resolve_checkpoint

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, checkpoint)
    (checkpoint / "openrft_base_model.txt").write_text("default")
    assert base_model_name(resolve_checkpoint(str(checkpoint))) == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_a_run_directory_exports_its_newest_checkpoint(tiny_checkpoint, tmp_path):
    from openrft.export import resolve_checkpoint

    run = tmp_path / "run"
    for step in (1, 3):
        shutil.copytree(tiny_checkpoint, run / "checkpoints" / f"step-{step}")
        (run / "checkpoints" / f"step-{step}" / "checkpoint.json").write_text(json.dumps({
            "object": "fine_tuning.job.checkpoint", "id": f"ftckpt-{step}", "created_at": 1, "metrics": {},
            "fine_tuned_model_checkpoint": f"ft:default:openrft::run:ckpt-step-{step}",
            "fine_tuning_job_id": "ftjob-run", "step_number": step}))
    (run / "job.json").write_text("{}")
    assert resolve_checkpoint(str(run)).path == run / "checkpoints" / "step-3"
    empty = tmp_path / "empty-run"
    empty.mkdir()
    (empty / "job.json").write_text("{}")
    with pytest.raises(Exception, match="no checkpoint yet"):
        resolve_checkpoint(str(empty))


# --- the command line and its errors ---

def cli(*args: str):
    from openrft.cli import app

    return CliRunner().invoke(app, ["export", *args])


def test_cli_exports_and_reports_sizes(tiny_checkpoint, tmp_path):
    result = cli(str(tiny_checkpoint), "--format", "adapter", "--out", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    assert "adapter_model.safetensors" in result.output and "vllm serve" in result.output


def test_missing_checkpoint_exits_2(tmp_path):
    result = cli(str(tmp_path / "nowhere"), "--format", "hf", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "model not found" in result.output
    result = cli("ft:default:openrft:nope:12345678", "--format", "gguf", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "not found" in result.output
    assert not (tmp_path / "x").exists()


def test_unsupported_architecture_for_gguf_exits_2(tiny_base, tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    result = cli(str(folder), "--format", "gguf", "--out", str(tmp_path / "g.gguf"))
    assert result.exit_code == 2 and "architecture 'gpt2'" in " ".join(result.output.split())
    assert not (tmp_path / "g.gguf").exists()


def test_a_full_disk_exits_2_and_leaves_nothing(tiny_checkpoint, tmp_path, monkeypatch):
    import shutil as shutil_module
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    for fmt in ("hf", "gguf", "adapter"):
        result = cli(str(tiny_checkpoint), "--format", fmt, "--out", str(tmp_path / fmt))
        assert result.exit_code == 2, result.output
        assert "not enough free disk space" in " ".join(result.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["gguf", "hf"])
def test_a_disk_that_fills_up_while_writing_exits_2(fmt, tiny_checkpoint, tmp_path, monkeypatch):
    import errno

    import gguf
    from transformers import PreTrainedModel

    def no_space(self, *args, **kwargs):
        (Path(args[0]) if args else tmp_path).mkdir(parents=True, exist_ok=True)
        raise OSError(errno.ENOSPC, "No space left on device")

    def safetensors_no_space(self, folder, *args, **kwargs):  # safetensors wraps the OSError in its own error
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", no_space)
    monkeypatch.setattr(PreTrainedModel, "save_pretrained", safetensors_no_space)
    out = tmp_path / ("m.gguf" if fmt == "gguf" else "hf")
    result = cli(str(tiny_checkpoint), "--format", fmt, "--out", str(out))
    assert result.exit_code == 2 and "disk filled up" in " ".join(result.output.split())
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def test_existing_output_needs_force_and_bad_options_exit_2(tiny_checkpoint, tmp_path):
    (tmp_path / "taken").mkdir()
    assert cli(str(tiny_checkpoint), "--format", "adapter", "--out", str(tmp_path / "taken")).exit_code == 2
    assert cli(str(tiny_checkpoint), "--format", "adapter", "--out", str(tmp_path / "taken"),
               "--force").exit_code == 0
    assert cli(str(tiny_checkpoint), "--format", "hf", "--quant", "q8_0", "--out", str(tmp_path / "h")).exit_code == 2
    assert cli(str(tiny_checkpoint), "--format", "onnx", "--out", str(tmp_path / "o")).exit_code == 2
