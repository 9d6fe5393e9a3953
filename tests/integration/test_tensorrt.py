import json

import numpy as np
import onnx
import pytest

from compress_export.api import build_engine_for_bundle, lint_model, validate_bundle
from compress_export.calibration.trt_cache import parse_cache
from compress_export.errors import MissingDependencyError
from compress_export.exporters.tensorrt.engine import tensorrt_available
from compress_export.exporters.tensorrt.lint import lint_for_tensorrt
from compress_export.exporters.tensorrt.targets import activation_scales
from compress_export.pipeline import PipelineConfig, run
from compress_export.specs import QuantRecipe
from tests.conftest import RESIDUAL_FACTORY

needs_tensorrt = pytest.mark.skipif(not tensorrt_available(), reason="tensorrt not installed")


@pytest.fixture(scope="module")
def trt_run(tmp_path_factory, residual_weights, digits_data):
    calib, val = digits_data
    out = tmp_path_factory.mktemp("trt") / "out"
    result = run(PipelineConfig(model=RESIDUAL_FACTORY, weights=str(residual_weights), targets="onnx-int8,trt-int8",
                                out=out, calib_data=str(calib), val_data=str(val), bench=None, progress=False))
    return result, out


def test_trt_int8_keeps_accuracy_and_passes_the_linter(trt_run):
    result, out = trt_run
    report = json.loads((out / "trt-int8" / "report.json").read_text())
    reference, candidate = report["metrics"]["reference"]["accuracy"], report["metrics"]["candidate"]["accuracy"]
    assert reference > 0.95
    assert 100 * (reference - candidate) <= 1.0
    assert lint_model(out / "trt-int8" / "model.onnx") == []


def test_placement_follows_tensorrt_rules(trt_run):
    _, out = trt_run
    graph = onnx.load(str(out / "trt-int8" / "model.onnx")).graph
    producer = {o: n for n in graph.node for o in n.output}
    adds = [n for n in graph.node if n.op_type == "Add" and all(i in producer for i in n.input)]
    assert any(all(producer[i].op_type == "DequantizeLinear" for i in add.input) for add in adds)
    assert any(n.op_type == "Concat" for n in graph.node)
    outputs = {o.name for o in graph.output}
    assert not any(producer[o].op_type in ("QuantizeLinear", "DequantizeLinear") for o in outputs)
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm") and len(node.input) > 2:
            assert producer.get(node.input[2]) is None  # biases stay float initializers
    zero_points = [init for init in graph.initializer if init.name.endswith("_zero_point")]
    assert zero_points and all(init.data_type == onnx.TensorProto.INT8 for init in zero_points)
    assert all(not onnx.numpy_helper.to_array(init).any() for init in zero_points)


def test_calibration_cache_matches_the_graph_scales_to_the_bit(trt_run):
    _, out = trt_run
    cache = parse_cache((out / "trt-int8" / "calibration.cache").read_text())
    assert cache.version == 100300 and cache.algorithm == "EntropyCalibration2"
    graph_scales = activation_scales(onnx.load(str(out / "trt-int8" / "model.onnx")))
    # The cache keeps the FP32 scales (TensorRT <= 10 calibrates FP32 graphs); the FP16 graph rounds them.
    assert {name: float(np.float16(scale)) for name, scale in cache.scales.items()} == graph_scales
    assert len(graph_scales) >= 5
    report = json.loads((out / "trt-int8" / "report.json").read_text())
    assert any("TensorRT <= 10" in note for note in report["notes"])


def test_float_layers_are_fp16_in_the_onnx_and_the_linter_checks_it(trt_run):
    _, out = trt_run
    model = onnx.load(str(out / "trt-int8" / "model.onnx"))
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 19
    assert {i.type.tensor_type.elem_type for i in (*model.graph.input, *model.graph.output)} == {onnx.TensorProto.FLOAT}
    scales = [init for init in model.graph.initializer if init.name.endswith("_scale")]
    assert scales and all(init.data_type == onnx.TensorProto.FLOAT16 for init in scales)
    assert lint_for_tensorrt(model, "fp16") == []
    fp32_qdq = onnx.load(str(out / "onnx-int8" / "model.onnx"))
    flagged = {v.node for v in lint_for_tensorrt(fp32_qdq, "fp16") if v.rule == "precision"}
    assert flagged and flagged == {n.name for n in fp32_qdq.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")}
    onnx.helper.set_model_props(fp32_qdq, {"compress_export.fp32_layers": ",".join(sorted(flagged))})
    assert not [v for v in lint_for_tensorrt(fp32_qdq, "fp16") if v.rule == "precision"]
    model.opset_import[0].version = 13
    assert "qdq-type" in {v.rule for v in lint_for_tensorrt(model)}


def test_linter_flags_onnxruntime_uint8_asymmetric_qdq(trt_run):
    _, out = trt_run
    model = onnx.load(str(out / "onnx-int8" / "model.onnx"))
    violations = lint_for_tensorrt(model)
    rules = {v.rule for v in violations}
    assert "int8" in rules
    constants = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    zero_points = [constants[n.input[2]] for n in model.graph.node
                   if n.op_type == "QuantizeLinear" and len(n.input) > 2]
    assert ("zero-point" in rules) == any(np.any(zp != 0) for zp in zero_points)
    assert all(v.node for v in violations)


def test_linter_catches_each_rule(trt_run):
    _, out = trt_run
    model = onnx.load(str(out / "trt-int8" / "model.onnx"))
    weight_dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear"
                     and any(i.name == n.input[0] for i in model.graph.initializer))
    for init in model.graph.initializer:
        if init.name == weight_dq.input[0]:
            values = onnx.numpy_helper.to_array(init).copy()
            values.flat[0] = -128
            init.CopyFrom(onnx.numpy_helper.from_array(values, init.name))
    for attribute in weight_dq.attribute:
        if attribute.name == "axis":
            attribute.i = 1
    model.opset_import[0].version = 12
    rules = {v.rule for v in lint_for_tensorrt(model)}
    assert {"weight-range", "channel-axis", "opset"} <= rules


def test_report_says_the_engine_was_not_built_and_require_engine_exits_3(trt_run, tmp_path):
    _, out = trt_run
    if tensorrt_available():
        pytest.skip("tensorrt is installed: the proxy path is not taken")
    report = json.loads((out / "trt-int8" / "report.json").read_text())
    assert report["engine_built"] is False
    assert "proxy" in report["validated_with"]
    recheck = validate_bundle(out / "trt-int8", bench=None)
    assert recheck.passed and "proxy" in recheck.to_dict()["validated_with"]
    with pytest.raises(MissingDependencyError) as error:
        validate_bundle(out / "trt-int8", bench=None, require_engine=True)
    assert error.value.exit_code == 3
    with pytest.raises(MissingDependencyError, match="tensorrt not installed"):
        build_engine_for_bundle(out / "trt-int8")


def test_ranges_from_a_tensorrt_cache_reproduce_its_scales(trt_run, digits_data, residual_weights, tmp_path):
    _, out = trt_run
    calib, val = digits_data
    cache_path = out / "trt-int8" / "calibration.cache"
    result = run(PipelineConfig(model=RESIDUAL_FACTORY, weights=str(residual_weights), targets="trt-int8",
                                out=tmp_path / "again", calib_data=str(calib), val_data=str(val), bench=None,
                                progress=False, ranges_from_cache=str(cache_path),
                                recipe=QuantRecipe(method="minmax")))
    assert result.exit_code == 0
    again = parse_cache((tmp_path / "again" / "trt-int8" / "calibration.cache").read_text())
    assert again.scales == parse_cache(cache_path.read_text()).scales


@needs_tensorrt
def test_engine_builds_and_runs_on_the_gpu(trt_run):
    _, out = trt_run
    versions = build_engine_for_bundle(out / "trt-int8")
    assert versions["tensorrt"]
    report = validate_bundle(out / "trt-int8", bench=None, require_engine=True)
    assert report.to_dict()["validated_with"] == "TensorRT"
    assert report.metrics["candidate"]["accuracy"] > 0.9
    assert np.isfinite(report.parity["output"]["cosine"])
