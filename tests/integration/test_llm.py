"""The language-model path end to end on a tiny random Llama (seconds): three validated bundles with FP32, INT8 and
block-wise INT4 decoders that onnxruntime-genai runs, perplexity/BLEU gates, continuations side by side; and the
real SmolLM2-135M-Instruct GGUF as a slow test."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from compress_export.cli.main import cli
from tests.conftest import needs_smollm2, smollm2_gguf

pytest.importorskip("onnxruntime_genai")
pytest.importorskip("transformers")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    from tests.tiny_llm import write_tiny_llama

    return write_tiny_llama(tmp_path_factory.mktemp("tiny") / "llama")


def _ops(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node}


@pytest.fixture(scope="module")
def exported(tiny_llama, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("llm")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "The json module"}\nimport json\n')
    out = tmp_path / "out"
    result = invoke(tiny_llama, "--to", "onnx,onnx-int8,onnx-int4", "--prompts", prompts, "--ppl-tokens", "200",
                    "--ppl-window", "64", "--ppl-stride", "32", "--max-new-tokens", "6", "--out", out, "-q", "--json")
    return result, out


def test_tiny_llama_exports_to_three_validated_bundles(exported):
    result, out = exported
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert [t["target"] for t in summary["targets"]] == ["onnx", "onnx-int8", "onnx-int4"]
    for target, ops in (("onnx", {"MatMul"}), ("onnx-int8", {"MatMulNBits"}), ("onnx-int4", {"MatMulNBits"})):
        bundle = out / target
        report = json.loads((bundle / "report.json").read_text())
        assert report["task"] == "text-generation" and report["passed"]
        assert ops <= _ops(bundle / "model" / "model.onnx")
        assert (bundle / "model" / "genai_config.json").is_file() and (bundle / "model" / "tokenizer.json").is_file()
        metrics = report["metrics"]
        assert metrics["reference"]["scored_tokens"] == 200
        assert {"perplexity", "next_token_agreement", "bleu", "chrf", "exact_match_first_tokens"} <= \
            set(metrics["candidate"])
        assert {g["gate"] for g in report["gate_results"]} == {"max_perplexity_increase", "min_bleu"}
        speed = report["bench"]["candidate"]
        assert speed["decode_tokens_per_s"] > 0 and speed["ttft_long_prompt_tokens"] > 0
        assert report["bench"]["candidate"]["peak_rss_mb"] > 0
        markdown = (bundle / "report.md").read_text()
        assert "## Continuations" in markdown and "The json module" in markdown
        reference = json.loads((bundle / "reference" / "continuations.json").read_text())
        assert reference["prompts"] == ["The json module", "import json"]
    fp32 = json.loads((out / "onnx" / "report.json").read_text())
    assert fp32["metrics"]["candidate"]["perplexity"] == fp32["metrics"]["reference"]["perplexity"]
    int4 = json.loads((out / "onnx-int4" / "report.json").read_text())
    assert int4["precision"]["weights_by_precision"].get("int4", 0) > 0 and int4["sensitivity"]["trials"]
    calibration = int4["sensitivity"]["calibration"]
    assert calibration["tokens"] > 0 and "GPTQ" in calibration["rounding"]
    assert calibration["ranked_by"].startswith("loss")  # the tiny Llama's modules matched every matrix
    # the search ranks the fused q/k/v per module; every piece reaches a quantized node, none is left float
    assert "float" not in int4["precision"]["weights_by_precision"]
    assert "MatMul" not in _ops(out / "onnx-int4" / "model" / "model.onnx")
    int8 = json.loads((out / "onnx-int8" / "report.json").read_text())
    assert set(int8["precision"]["weights_by_precision"]) == {"int8"}  # the embedding table too (8-bit Gather)
    gathers = [n for n in onnx.load(str(out / "onnx-int8" / "model" / "model.onnx"), load_external_data=False)
               .graph.node if n.op_type == "GatherBlockQuantized"]
    assert gathers and all(next(a.i for a in n.attribute if a.name == "bits") == 8 for n in gathers)
    assert int4["artifact"]["size_bytes"] < int8["artifact"]["size_bytes"] < fp32["artifact"]["size_bytes"]
    assert (out / "tradeoff.png").is_file()


def test_validate_rechecks_a_language_model_bundle_and_its_hashes(exported, tmp_path):
    import shutil

    _, out = exported
    again = invoke("validate", out / "onnx-int4", "--json", "-q")
    assert again.exit_code == 0, again.output
    report = json.loads(again.output)
    recorded = json.loads((out / "onnx-int4" / "report.json").read_text())
    assert report["metrics"]["candidate"]["perplexity"] == pytest.approx(
        recorded["metrics"]["candidate"]["perplexity"], rel=1e-5)  # the same windows, the same decoder
    assert report["metrics"]["candidate"]["bleu"] == pytest.approx(recorded["metrics"]["candidate"]["bleu"])
    assert report["bench"]["candidate"]["decode_tokens_per_s"] > 0
    copy = tmp_path / "copy"
    shutil.copytree(out / "onnx-int4", copy)
    with open(copy / "model" / "model.onnx.data", "r+b") as data:
        data.seek(100)
        data.write(b"\x7f")
    tampered = invoke("validate", copy, "-q")
    assert tampered.exit_code == 2 and "model.onnx.data" in tampered.output


@pytest.mark.parametrize("name, content", [
    ("reference/heldout.npz", lambda path: np.savez(path, first=np.array([object()], dtype=object))),
    ("reference/heldout.npz", lambda path: np.savez(path, nll=np.zeros(3))),
    ("reference/continuations.json", lambda path: path.write_text('{"prompts": ["a"]}')),
    ("reference/continuations.json", lambda path: path.write_text("[not json")),
])
def test_validate_refuses_replaced_and_rehashed_reference_files_in_one_line(exported, tmp_path, name, content):
    import shutil

    from compress_export.util.hashing import sha256_file

    _, out = exported
    copy = tmp_path / "copy"
    shutil.copytree(out / "onnx-int8", copy)
    content(copy / name)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"][name] = sha256_file(copy / name)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("validate", copy, "-q", "--no-bench")
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and name in lines[0], result.output


def test_a_language_model_refuses_other_targets_and_bad_text(tiny_llama, tmp_path):
    wrong = invoke(tiny_llama, "--to", "trt-int8", "--out", tmp_path / "a", "-q")
    assert wrong.exit_code == 2 and "onnx-int4" in wrong.output
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n")
    bad = invoke(tiny_llama, "--to", "onnx", "--text-data", empty, "--out", tmp_path / "b", "-q")
    assert bad.exit_code == 2 and "empty" in bad.output and "Traceback" not in bad.output
    not_lm = invoke(tmp_path / "empty.txt", "--task", "text-generation", "--to", "onnx", "--out", tmp_path / "c", "-q")
    assert not_lm.exit_code == 2 and "causal language model" in not_lm.output


@pytest.mark.slow
@needs_smollm2
def test_smollm2_gguf_holds_the_perplexity_budget_at_4_bits(tmp_path):
    gguf = smollm2_gguf()
    result = invoke(gguf, "--to", "onnx-int8,onnx-int4", "--out", tmp_path / "out", "--ppl-tokens", "1024", "-q",
                    "--json")
    assert result.exit_code == 0, result.output
    assert "Converting" not in result.stderr  # -q: nothing but errors on stderr, transformers' bars included
    reports = {t["target"]: t["report"] for t in json.loads(result.stdout)["targets"]}
    int8, int4 = reports["onnx-int8"], reports["onnx-int4"]
    increase = {name: 100 * (r["metrics"]["candidate"]["perplexity"] / r["metrics"]["reference"]["perplexity"] - 1)
                for name, r in reports.items()}
    assert increase["onnx-int8"] <= 1.0 and increase["onnx-int4"] <= 5.0
    assert int4["bench"]["candidate"]["size_bytes"] <= 0.35 * int4["bench"]["reference"]["size_bytes"]
    assert int4["bench"]["candidate"]["decode_tokens_per_s"] >= 2 * int4["bench"]["reference"]["decode_tokens_per_s"]
    assert int8["source"]["kind"] == "gguf"


def test_each_weight_matrix_gets_the_width_the_plan_gives_it(tiny_llama, tmp_path):
    from compress_export.exporters.genai.build import build_fp32, quantize, weight_matrices

    fp32 = build_fp32(tiny_llama, tmp_path / "fp32", tmp_path / "cache")
    matrices = weight_matrices(onnx.load(str(fp32 / "model.onnx")))
    matmuls = [m.node for m in matrices if m.op == "MatMul"]
    gather = next(m.node for m in matrices if m.op == "Gather")
    plan = {**{name: 4 for name in matmuls}, matmuls[0]: 8, matmuls[-1]: None, gather: 4}
    model = onnx.load(str(quantize(fp32, tmp_path / "mixed", plan) / "model.onnx"))
    quantized = [node for node in model.graph.node if node.op_type in ("MatMulNBits", "GatherBlockQuantized")]
    widths = {n.name.removesuffix("_Q4").removesuffix("_Q8"): next((a.i for a in n.attribute if a.name == "bits"), 4)
              for n in quantized}
    float_matmuls = {node.name for node in model.graph.node if node.op_type == "MatMul"}
    assert widths[matmuls[0]] == 8 and widths[gather] == 4
    assert all(widths[name] == 4 for name in matmuls[1:-1])
    assert float_matmuls == {matmuls[-1]}
    from compress_export.exporters.genai.build import weight_parameters

    tied = next(m for m in matrices if m.op == "Gather")
    assert tied.transposed and weight_parameters(matrices) == sum(m.parameters for m in matrices) - tied.parameters


class _Trace:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_language_model_weights_are_not_loaded_without_trust(tiny_llama, tmp_path):
    import pickle
    import shutil

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_llama, folder)
    (folder / "model.safetensors").unlink()
    trace = tmp_path / "trace"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Trace(str(trace))))
    result = invoke(folder, "--to", "onnx", "--out", tmp_path / "out", "-q")
    assert result.exit_code == 2 and "--trust-pickle" in result.output
    assert not trace.exists()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00garbage")
    refused = invoke(broken, "--to", "onnx", "--out", tmp_path / "out2", "-q")
    assert refused.exit_code == 2 and "Traceback" not in refused.output
