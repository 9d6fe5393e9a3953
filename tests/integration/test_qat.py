import json

import pytest

from compress_export.compression.qat_settings import QatSettings
from compress_export.errors import UsageError
from compress_export.pipeline import PipelineConfig, run
from compress_export.specs import QuantRecipe
from tests.conftest import DIGITS_FACTORY


def _run(out, digits_data, **overrides):
    calib, val = digits_data
    settings = dict(model=DIGITS_FACTORY, targets="onnx-int8,trt-int8", out=out, calib_data=str(calib),
                    val_data=str(val), bench=None, progress=False, fallback=False,
                    recipe=QuantRecipe(method="percentile", percentile=99.0),
                    compression=(("qat", QatSettings(epochs=2, lr=1e-4)),))
    settings.update(overrides)
    return run(PipelineConfig(**settings))


def test_qat_keeps_digits_within_half_a_point_and_reports_ptq_beside_it(tmp_path, digits_data):
    result = _run(tmp_path / "out", digits_data)
    assert not result.failures, result.failures
    assert [report.target for report in result.reports] == ["onnx-int8", "trt-int8"]
    for report in result.reports:
        data = report.to_dict()
        reference = data["metrics"]["reference"]["accuracy"]
        assert 100 * (reference - data["metrics"]["candidate"]["accuracy"]) <= 0.5, report.target
        qat = data["qat"]
        assert qat["fake_quantized_activations"] == 4 and qat["learned_ranges"] == 4  # 2 Conv + 2 Gemm inputs
        assert qat["steps"] > 0 and qat["loss_last"] is not None
        assert "accuracy" in qat["ptq"]["metrics"]["candidate"]
        folder = tmp_path / "out" / report.target
        assert (folder / "qat_loss.png").is_file()
        assert "## QAT" in (folder / "report.md").read_text()
        assert json.loads((folder / "ranges.json").read_text())["method"] == "qat+percentile"


def test_qat_is_deterministic_with_a_seed(tmp_path, digits_data):
    first = _run(tmp_path / "a", digits_data, targets="onnx-int8")
    second = _run(tmp_path / "b", digits_data, targets="onnx-int8")
    assert len(first.reports) == len(second.reports) == 1, (first.failures, second.failures)
    assert first.reports[0].context["qat"]["loss_last"] == second.reports[0].context["qat"]["loss_last"]
    for name in ("model.onnx", "ranges.json"):
        assert (tmp_path / "a" / "onnx-int8" / name).read_bytes() == (tmp_path / "b" / "onnx-int8" / name).read_bytes()


def test_module_inputs_are_matched_to_the_graph_tensors(digits_data, digits_onnx):
    import numpy as np
    import onnx

    from compress_export.compression.qat_torch import match_inputs
    from compress_export.graphs.selection import float_activations, select_nodes
    from compress_export.sources import load_model
    from compress_export.sources.torch_source import differentiable_forward
    from compress_export.specs import TensorSpec

    model = load_model(DIGITS_FACTORY, inputs=(TensorSpec("image", ("batch", 1, 8, 8)),))
    graph = onnx.load(str(digits_onnx))
    candidates = float_activations(graph, select_nodes(graph, QuantRecipe()))
    with np.load(digits_data[0]) as npz:
        feeds = {"image": npz["image"][:4]}
    matched = match_inputs(model.module, digits_onnx, candidates, feeds, differentiable_forward(model))
    compute_inputs = {node.input[0] for node in graph.graph.node if node.op_type in ("Conv", "Gemm", "MatMul")}
    assert len(matched) == 4 and set(matched.values()) <= compute_inputs
    assert len(set(matched.values())) == 4


def test_qat_needs_a_pytorch_module(tmp_path, digits_data, digits_onnx):
    with pytest.raises(UsageError, match="--qat changes a PyTorch nn.Module or a Keras model.*ONNX model"):
        _run(tmp_path / "out", digits_data, model=str(digits_onnx))
