from pathlib import Path

import numpy as np
import onnx
import pytest

from compress_export.exporters.onnx.qdq_rewrites import adjacent_nodes, with_float_tensors
from compress_export.pipeline import PipelineConfig, run
from compress_export.specs import QuantRecipe
from tests.conftest import DIGITS_FACTORY

PLANTED = f"{Path(__file__).resolve().parents[1] / 'planted_outliers.py'}:factory"


@pytest.fixture(scope="module")
def planted_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted") / "data.npz"
    np.savez(path, x=np.random.default_rng(0).normal(size=(160, 16)).astype(np.float32))
    return path


def _run(out, data, **overrides):
    settings = dict(model=PLANTED, targets="onnx-int8", out=out, calib_data=str(data), bench=None, progress=False,
                    recipe=QuantRecipe(method="minmax"))
    settings.update(overrides)
    return run(PipelineConfig(**settings))


def test_the_layer_with_planted_outliers_is_the_one_kept_in_float(tmp_path, planted_data):
    result = _run(tmp_path / "out", planted_data)
    report = result.reports[0].to_dict()
    search = report["sensitivity"]
    assert search["all_quantized"]["cosine"] < 0.99
    assert search["budget_met"] is True
    # No calibrator's ranges rescue it (the outlier is always there), so the search had to float a tensor.
    assert all(score["cosine"] < 0.99 for score in search["range_choice"]["scores_by_method"].values())
    assert search["evaluations"] >= len(search["ranking"]) + 2
    assert len(search["kept_in_float"]) == 1
    top = search["ranking"][0]
    assert top["tensor"] == search["kept_in_float"][0]
    assert top["cosine_gain"] > 0.05
    assert all(row["cosine_gain"] < top["cosine_gain"] / 10 for row in search["ranking"][1:])
    graph = onnx.load(str(tmp_path / "out" / "onnx-int8" / "model.onnx"))
    quantized = {node.input[0] for node in graph.graph.node if node.op_type == "QuantizeLinear"}
    assert top["tensor"] not in quantized
    assert report["passed"] and report["parity"]["output"]["cosine"] >= 0.99
    assert (tmp_path / "out" / "onnx-int8" / "sensitivity.png").is_file()
    markdown = (tmp_path / "out" / "onnx-int8" / "report.md").read_text()
    assert "## Sensitivity" in markdown and top["tensor"] in markdown


def test_no_fallback_keeps_everything_quantized_and_fails_the_gate(tmp_path, planted_data):
    result = _run(tmp_path / "out", planted_data, fallback=False)
    report = result.reports[0].to_dict()
    assert "sensitivity" not in report
    assert result.exit_code == 1


def test_nothing_falls_back_when_the_budget_already_holds(tmp_path, digits_data):
    calib, val = digits_data
    result = run(PipelineConfig(model=DIGITS_FACTORY, targets="onnx-int8", out=tmp_path / "out",
                                calib_data=str(calib), val_data=str(val), bench=None, progress=False))
    report = result.reports[0].to_dict()
    assert report["passed"] and "sensitivity" not in report


def test_bypassing_every_pair_restores_the_float_model(tmp_path, planted_data):
    import onnxruntime as ort

    _run(tmp_path / "out", planted_data, fallback=False)
    quantized = onnx.load(str(tmp_path / "out" / "onnx-int8" / "model.onnx"))
    fp32_dir = tmp_path / "fp32"
    _run(fp32_dir, planted_data, targets="onnx")
    original = onnx.load(str(fp32_dir / "onnx" / "model.onnx"))
    activations = [n.input[0] for n in quantized.graph.node if n.op_type == "QuantizeLinear"
                   and n.input[0] not in {i.name for i in quantized.graph.initializer}]
    bypassed = with_float_tensors(quantized, original, activations)
    x = {"x": np.random.default_rng(1).normal(size=(4, 16)).astype(np.float32)}
    float_out = ort.InferenceSession(original.SerializeToString()).run(None, x)[0]
    bypass_out = ort.InferenceSession(bypassed.SerializeToString()).run(None, x)[0]
    # only weight quantization remains: close to float, unlike the fully quantized graph
    quantized_out = ort.InferenceSession(quantized.SerializeToString()).run(None, x)[0]
    assert np.abs(bypass_out - float_out).max() < 0.1 * np.abs(float_out).max()
    assert np.abs(quantized_out - float_out).max() > np.abs(bypass_out - float_out).max()
    names = {node.name for node in original.graph.node}
    assert set(adjacent_nodes(original, activations[:1], names)) <= names
