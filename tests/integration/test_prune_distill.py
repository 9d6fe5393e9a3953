"""prune -> distill -> quantize on the digits CNN from the command line: half the channels go, the distilled
model keeps accuracy within a point of the original on onnx-int8 and tflite-int8, and each stage is reported."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from compress_export.cli.main import cli
from tests.conftest import DIGITS_FACTORY


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory, digits_data):
    calib, val = digits_data
    out = tmp_path_factory.mktemp("prune") / "out"
    # A pruned model is a new model: its logits move more than quantization's 0.99 default allows, so the
    # gate that matters is the accuracy drop (1 point, the default); the cosine gate is the user's call.
    result = invoke("export", DIGITS_FACTORY, "--to", "onnx-int8,tflite-int8", "--prune", "0.5", "--distill",
                    "--min-cosine", "0.9", "--calib-data", calib, "--val-data", val, "--out", out, "--no-bench", "-q",
                    "--json")
    return result, out


def test_pruned_and_distilled_cnn_keeps_accuracy_at_a_quarter_of_the_flops(pruned_run):
    result, out = pruned_run
    assert result.exit_code == 0, result.output
    for target in ("onnx-int8", "tflite-int8"):
        report = json.loads((out / target / "report.json").read_text())
        accuracy = report["metrics"]
        assert 100 * (accuracy["reference"]["accuracy"] - accuracy["candidate"]["accuracy"]) <= 1.0
        stages = {row["stage"]: row for row in report["distill"]["stages"]}
        assert set(stages) == {"original", "pruned", "distilled"}
        assert stages["distilled"]["macs"] <= 0.55 * stages["original"]["macs"]
        flops = report["flops"]  # the report's before/after compute: the original against this artifact
        assert flops["reference"]["macs"] == stages["original"]["macs"]
        assert flops["candidate"]["macs"] <= 0.55 * flops["reference"]["macs"]
        assert stages["pruned"]["parameters"] < 0.5 * stages["original"]["parameters"]
        assert stages["distilled"]["cosine"] > stages["pruned"]["cosine"] + 0.1  # distillation recovered it
        assert report["prune"]["settings"] == {"ratio": 0.5, "importance": "magnitude", "kinds": []}
        assert (out / target / "distill_loss.png").is_file()
        markdown = (out / target / "report.md").read_text()
        assert "## Pruning" in markdown and "| distilled |" in markdown
    recipe = (out / "onnx-int8" / "recipe.yaml").read_text()
    assert "prune: 0.5" in recipe and "distill: true" in recipe


def test_distill_needs_prune_and_pruning_needs_a_pytorch_module(digits_data, digits_onnx, tmp_path):
    calib, val = digits_data
    alone = invoke("export", DIGITS_FACTORY, "--to", "onnx", "--distill", "--calib-data", calib,
                   "--out", tmp_path / "a", "--no-bench", "-q")
    assert alone.exit_code == 2 and "use it with --prune" in alone.output
    onnx_model = invoke("export", digits_onnx, "--to", "onnx", "--prune", "0.5", "--calib-data", calib,
                        "--out", tmp_path / "b", "--no-bench", "-q")
    assert onnx_model.exit_code == 2 and "PyTorch nn.Module" in onnx_model.output
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())
    for kinds, message in (("bogus", "unknown kind"), ("conv=half", "ratio after"),
                           ("heads", "language model's attention heads")):
        bad = invoke("export", DIGITS_FACTORY, "--to", "onnx", "--prune", "0.5", "--prune-kinds", kinds,
                     "--calib-data", calib, "--out", tmp_path / "k", "--no-bench", "-q")
        assert bad.exit_code == 2 and message in bad.output
    alone = invoke("export", DIGITS_FACTORY, "--to", "onnx", "--prune-kinds", "conv", "--calib-data", calib,
                   "--out", tmp_path / "k", "--no-bench", "-q")
    assert alone.exit_code == 2 and "give --prune" in alone.output


def test_same_seed_same_pruned_and_distilled_bytes(digits_data, tmp_path):
    calib, val = digits_data
    hashes = []
    for run in ("a", "b"):
        result = invoke("export", DIGITS_FACTORY, "--to", "onnx-int8", "--prune", "0.5", "--prune-importance", "taylor",
                        "--distill", "--distill-epochs", "2", "--min-cosine", "0.5", "--calib-data", calib,
                        "--val-data", val, "--out", tmp_path / run, "--no-bench", "-q")
        assert result.exit_code in (0, 1), result.output
        hashes.append(json.loads((tmp_path / run / "onnx-int8" / "manifest.json").read_text())["files"]["model.onnx"])
    assert hashes[0] == hashes[1]


def test_every_stage_is_timed_beside_the_original_and_plotted(digits_data, tmp_path):
    calib, val = digits_data
    out = tmp_path / "out"
    result = invoke("export", DIGITS_FACTORY, "--to", "onnx", "--prune", "0.5", "--distill", "--distill-steps", "3",
                    "--min-cosine", "0", "--max-accuracy-drop", "100", "--calib-data", calib, "--val-data", val,
                    "--out", out, "--bench-batch", "1,8", "--bench-runs", "3", "--bench-seconds", "0", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "onnx" / "report.json").read_text())
    stages = report["distill"]["stages"]
    assert [row["stage"] for row in stages] == ["original", "pruned", "distilled"]
    for row in stages:
        assert set(row["p50_ms"]) == {"1", "8"} and all(value > 0 for value in row["p50_ms"].values())
        assert "_onnx" not in row and row["size_bytes"] > 0
    assert stages[1]["size_bytes"] < stages[0]["size_bytes"]
    assert (out / "onnx" / "stages.png").is_file()
    markdown = (out / "onnx" / "report.md").read_text()
    assert "p50 @ batch 8 (ms)" in markdown and markdown.index("## Pruning") < markdown.index("## Distillation")


def test_2_4_sparsity_reaches_the_tensorrt_model_and_its_linter(digits_data, tmp_path):
    import onnx

    from compress_export.api import lint_model
    from compress_export.exporters.tensorrt.lint import groups_breaking_2_4

    calib, val = digits_data
    out = tmp_path / "out"
    result = invoke("export", DIGITS_FACTORY, "--to", "trt-int8", "--prune", "0.5", "--sparsity", "2:4",
                    "--distill-steps", "20", "--min-cosine", "0", "--max-accuracy-drop", "100", "--calib-data", calib,
                    "--val-data", val, "--out", out, "--no-bench", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "trt-int8" / "report.json").read_text())
    assert [row["stage"] for row in report["sparsity"]["stages"]] == ["original", "pruned", "2:4 masked",
                                                                      "2:4 fine-tuned"]
    assert report["sparsity"]["layers"] >= 2 and report["sparsity"]["steps"] == 20
    model = onnx.load(str(out / "trt-int8" / "model.onnx"))
    assert {p.key: p.value for p in model.metadata_props}["compress_export.sparsity"] == "2:4"
    assert lint_model(out / "trt-int8" / "model.onnx") == []
    weights = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    int8 = [w for w in weights.values() if w.dtype == "int8" and w.ndim == 4 and w.shape[1] % 4 == 0]
    assert int8 and all(groups_breaking_2_4(w, 1) == 0 for w in int8)  # the pattern survives quantization
    refused = invoke("export", DIGITS_FACTORY, "--to", "onnx-int8", "--sparsity", "2:4", "--qat", "--calib-data",
                     calib, "--out", tmp_path / "q", "--no-bench", "-q")
    assert refused.exit_code == 2 and "--qat" in refused.output


@pytest.fixture(scope="module")
def held_out_cnn_weights(tmp_path_factory):
    from safetensors.torch import save_file

    from compress_export.demo.data import digits_split
    from tests.pruning_blocks import train_digits

    path = tmp_path_factory.mktemp("held-out-cnn") / "weights.safetensors"
    save_file(train_digits(*digits_split()["train"]), str(path))
    return path


def test_held_out_cnn_with_concat_of_unequal_branches_into_flatten_prunes_and_recovers(
        digits_data, held_out_cnn_weights, tmp_path):
    """Stem Conv-BN-hardswish, depthwise + pointwise residual, concat with a narrower SiLU branch, average pooling,
    flatten -> Linear: half the channels go, distillation brings accuracy back within a point of FP32."""
    calib, val = digits_data
    out = tmp_path / "out"
    result = invoke("export", f"{Path(__file__).parents[1] / 'pruning_blocks.py'}:digits_factory", "--weights",
                    held_out_cnn_weights, "--to", "onnx-int8", "--prune", "0.5", "--distill", "--calib-data", calib,
                    "--val-data", val, "--out", out, "--no-bench", "-q")
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "onnx-int8" / "report.json").read_text())
    accuracy = report["metrics"]
    assert 100 * (accuracy["reference"]["accuracy"] - accuracy["candidate"]["accuracy"]) <= 1.0
    stages = {row["stage"]: row for row in report["distill"]["stages"]}
    assert stages["distilled"]["macs"] <= 0.55 * stages["original"]["macs"]
    assert report["prune"]["left_whole"] == []


@pytest.mark.parametrize("flags", [("--prune", "0.5"), ("--qat",), ("--sparsity", "2:4"), ("--student", "every:2")])
def test_a_step_the_model_kind_cannot_take_is_refused_before_any_work(flags, digits_data, digits_onnx, tmp_path):
    calib, _ = digits_data
    out = tmp_path / "out"
    result = invoke("export", digits_onnx, "--to", "onnx-int8", *flags, "--calib-data", calib, "--out", out, "-q")
    assert result.exit_code == 2 and f"{flags[0]} changes" in result.output and "ONNX model" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("flags", [("--qat",), ("--sparsity", "2:4")])
def test_a_language_model_refuses_the_steps_it_cannot_take(flags, tmp_path_factory, tmp_path):
    from tests.tiny_llm import write_tiny_llama

    folder = write_tiny_llama(tmp_path_factory.mktemp("tiny-llm-refusal"))
    out = tmp_path / "out"
    result = invoke("export", folder, "--to", "onnx-int8", *flags, "--out", out, "-q")
    assert result.exit_code == 2, result.output
    assert f"{flags[0]} changes" in result.output and "language model" in result.output
    assert not out.exists() or not any(out.iterdir())
