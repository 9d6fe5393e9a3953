"""Pruning and distillation of a causal language model: MLP width leaves every layer alike (the config follows),
the data-driven importance picks its own neurons, distillation really changes the weights and brings the student
closer to its teacher, and a pruned + distilled chain ends in bundles whose report lists every stage against the
original and which `validate` re-checks."""

import copy
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from compress_export.cli.main import cli
from compress_export.compression.distill_torch import DistillSettings
from compress_export.compression.lm_distill import distill_lm
from compress_export.compression.lm_width import prune_mlp_width
from compress_export.sources.causal_lm import float_model
from tests.conftest import needs_smollm2, smollm2_gguf
from tests.tiny_llm import write_tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-llm-prune"))


def _windows(count=8, length=32):
    rng = np.random.default_rng(0)
    return [rng.integers(3, 390, length).astype(np.int64) for _ in range(count)]


def test_every_layer_loses_the_same_neurons_count_and_the_model_still_runs(tiny):
    model = float_model(tiny)
    counts = prune_mlp_width(model, 0.25, "magnitude", _windows())
    assert counts["mlp_width"] == [128, 96] and model.config.intermediate_size == 96
    for layer in model.model.layers:
        assert layer.mlp.up_proj.out_features == layer.mlp.gate_proj.out_features == layer.mlp.down_proj.in_features
        assert layer.mlp.down_proj.weight.shape == (64, 96)
    assert counts["parameters_after"] == counts["parameters_before"] - 2 * 3 * 64 * 32
    assert model(input_ids=torch.arange(5, 20)[None]).logits.shape == (1, 15, 400)


def test_both_importances_read_the_calibration_text_not_only_the_weights(tiny):
    """Plain weight norms drop the few neurons that carry a language model's massive activations (SmolLM2-135M
    with 25% of its MLP neurons gone by weight norm alone reads perplexity 3e6), so both rankings weigh the data."""
    def kept(importance, windows=None):
        model = float_model(tiny)
        original = model.model.layers[0].mlp.down_proj.weight.detach().clone()
        prune_mlp_width(model, 0.25, importance, windows or _windows())
        pruned = model.model.layers[0].mlp.down_proj.weight.detach()
        return {int(np.argmin([(original[:, j] - pruned[:, i]).abs().sum() for j in range(original.shape[1])]))
                for i in range(pruned.shape[1])}

    assert kept("taylor") != kept("magnitude")
    other_text = [np.full(32, token, dtype=np.int64) for token in (7, 11, 13, 17)]
    assert kept("magnitude", other_text) != kept("magnitude")


def test_distillation_changes_the_weights_and_brings_the_student_closer(tiny):
    teacher = float_model(tiny).eval()
    with torch.no_grad():  # random weights: make the MLPs and the logits matter, so pruning costs something
        teacher.lm_head.weight.mul_(10)
        for layer in teacher.model.layers:
            layer.mlp.down_proj.weight.mul_(10)
    student = copy.deepcopy(teacher)
    prune_mlp_width(student, 0.5, "magnitude", _windows())
    before = copy.deepcopy(student)
    held = torch.as_tensor(np.stack(_windows(4, 32)))

    def gap(model):
        with torch.no_grad():
            return float(torch.nn.functional.kl_div(model(input_ids=held).logits.log_softmax(-1),
                                                    teacher(input_ids=held).logits.log_softmax(-1),
                                                    log_target=True, reduction="batchmean"))

    trained, losses, lr = distill_lm(student, teacher, _windows(16, 32), DistillSettings(steps=30, device="cpu"))
    assert lr == 1e-4 and len(losses) == 30  # a language model's rate, whatever its size
    assert not torch.equal(trained.model.layers[0].mlp.up_proj.weight, before.model.layers[0].mlp.up_proj.weight)
    assert gap(trained) < 0.8 * gap(before)


def test_pruned_and_distilled_language_model_reports_every_stage_and_validates(tiny, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", str(tiny), "--to", "onnx,onnx-int4", "--prune", "0.25", "--distill",
                                      "--distill-steps", "3", "--out", str(out), "--no-bench", "-q"])
    assert result.exit_code in (0, 1), result.output
    for target in ("onnx", "onnx-int4"):
        report = json.loads((out / target / "report.json").read_text())
        record = report["compression"]
        stages = [row["stage"] for row in record["stages"]]
        assert stages == ["original", "pruned", "distilled"]
        assert record["prune"]["mlp_width"] == [128, 96] and record["distill"]["steps"] == 3
        assert record["stages"][1]["parameters"] < record["stages"][0]["parameters"]
        markdown = (out / target / "report.md").read_text()
        assert "## Pruning and distillation" in markdown and "| distilled |" in markdown
    check = CliRunner().invoke(cli, ["validate", str(out / "onnx-int4")])
    assert check.exit_code == 0, check.output


def test_prune_kinds_other_than_ffn_are_refused_for_a_language_model(tiny, tmp_path):
    result = CliRunner().invoke(cli, ["export", str(tiny), "--to", "onnx", "--prune", "0.25", "--prune-kinds",
                                      "conv", "--out", str(tmp_path / "o"), "-q"])
    assert result.exit_code == 2 and "not conv" in result.output


@pytest.mark.slow
@needs_smollm2
def test_smollm2_pruned_distilled_and_4_bit_reports_the_chain(tmp_path):
    gguf = smollm2_gguf()
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", str(gguf), "--to", "onnx-int4", "--prune", "0.25", "--distill",
                                      "--distill-steps", "8", "--ppl-tokens", "1024", "--out", str(out), "-q"])
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "onnx-int4" / "report.json").read_text())
    record = report["compression"]
    assert record["prune"]["mlp_width"] == [1536, 1152]
    assert [row["stage"] for row in record["stages"]] == ["original", "pruned", "distilled"]
    assert record["stages"][1]["perplexity_increase_pct"] < 100  # the massive-activation neurons survived


def test_every_k_th_decoder_layer_student_is_distilled_and_reported(tiny, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", str(tiny), "--to", "onnx-int8", "--student", "every:2", "--distill",
                                      "--distill-steps", "2", "--out", str(out), "--no-bench", "-q"])
    assert result.exit_code in (0, 1), result.output
    record = json.loads((out / "onnx-int8" / "report.json").read_text())["compression"]
    assert record["student"]["kept"] == [0] and [r["stage"] for r in record["stages"]] == ["original", "student",
                                                                                          "distilled"]
    factory = CliRunner().invoke(cli, ["export", str(tiny), "--to", "onnx", "--student", "x.py:f", "--distill",
                                       "--out", str(tmp_path / "f"), "-q"])
    assert factory.exit_code == 2 and "every:K" in factory.output


def test_whole_key_value_groups_go_and_the_config_follows(tiny):
    from compress_export.compression.lm_heads import prune_heads

    model = float_model(tiny)  # 4 query heads reading 2 key/value heads, head size 16
    counts = prune_heads(model, 0.5, "magnitude", _windows())
    assert counts["heads"] == [4, 2] and counts["key_value_heads"] == [2, 1] and model.config.head_dim == 16
    attention = model.model.layers[0].self_attn
    assert attention.q_proj.out_features == 32 and attention.k_proj.out_features == 16
    assert attention.o_proj.in_features == 32
    assert model(input_ids=torch.arange(5, 20)[None]).logits.shape == (1, 15, 400)
    taylor = float_model(tiny)
    prune_heads(taylor, 0.5, "taylor", _windows())
    assert taylor(input_ids=torch.arange(5, 20)[None]).logits.shape == (1, 15, 400)
