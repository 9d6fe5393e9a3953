"""Signed activation Q/DQ (TensorRT's form) read in OpenVINO through the equal unsigned pairs, and the second runtime
that cross-checks a proxy-validated graph."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress_export.metrics.base import ArtifactProbe
from compress_export.metrics.second_runtime import METRIC as SECOND_RUNTIME
from compress_export.runtimes import open_runner
from compress_export.runtimes.machine import has_vnni
from compress_export.runtimes.openvino_qdq import signed_activation_pairs, unsigned_activations
from compress_export.validators.analysis import analysis_warnings

CHANNELS = 8


def resize_concat_conv() -> onnx.ModelProto:
    """Nearest 2x Resize -> Concat -> signed Q/DQ -> INT8 Conv: the upsampling neck of a detector (PP-OCR det,
    YOLOv8) in trt-int8's placement."""
    rng = np.random.default_rng(0)
    initializers = [
        numpy_helper.from_array(np.float32(17.2), "scale"), numpy_helper.from_array(np.int8(0), "zero"),
        numpy_helper.from_array(rng.integers(-127, 128, (4, 2 * CHANNELS, 3, 3)).astype(np.int8), "w_q"),
        numpy_helper.from_array(np.full(4, 1e-2, np.float32), "w_scale"),
        numpy_helper.from_array(np.zeros(4, np.int8), "w_zero"),
        numpy_helper.from_array(np.array([], np.float32), "roi"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "factors")]
    nodes = [helper.make_node("Resize", ["small", "roi", "factors"], ["up"], mode="nearest"),
             helper.make_node("Relu", ["large"], ["large_relu"]),
             helper.make_node("Concat", ["up", "large_relu"], ["joined"], axis=1),
             helper.make_node("QuantizeLinear", ["joined", "scale", "zero"], ["joined_q"]),
             helper.make_node("DequantizeLinear", ["joined_q", "scale", "zero"], ["joined_dq"]),
             helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], axis=0),
             helper.make_node("Conv", ["joined_dq", "w"], ["out"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(
        nodes, "neck", [helper.make_tensor_value_info("small", TensorProto.FLOAT, [None, CHANNELS, 8, 8]),
                        helper.make_tensor_value_info("large", TensorProto.FLOAT, [None, CHANNELS, 16, 16])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 4, 16, 16])], initializers,
        value_info=[helper.make_tensor_value_info("joined_q", TensorProto.INT8, [None, 2 * CHANNELS, 16, 16])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def feeds(count: int = 4) -> dict:
    rng = np.random.default_rng(1)
    return {"small": rng.normal(0, 500, (count, CHANNELS, 8, 8)).astype(np.float32),
            "large": rng.normal(0, 500, (count, CHANNELS, 16, 16)).astype(np.float32)}


def exact(model: onnx.ModelProto) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds())[0]


def cosine(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_unsigned_pairs_compute_the_same_values_and_leave_weights_signed():
    model = resize_concat_conv()
    signed = exact(model)
    assert unsigned_activations(model) == 2
    onnx.checker.check_model(model)
    assert not signed_activation_pairs(model)
    zero_points = {init.name: init.data_type for init in model.graph.initializer}
    assert zero_points["w_zero"] == TensorProto.INT8  # the weight's DequantizeLinear is untouched
    assert np.array_equal(exact(model), signed)


def test_openvino_reads_a_signed_trt_graph_as_onnxruntime_does(tmp_path):
    ov = pytest.importorskip("openvino")
    path = tmp_path / "model.onnx"
    onnx.save(resize_concat_conv(), path)
    with open_runner("openvino", str(path)) as runner:
        read = runner.infer(feeds())["out"]
    # Without VNNI the CPU plugin sums u8 x s8 products in pairs into 16 bits (AVX2's vpmaddubsw), which saturate
    # at full-range activations: close, not exact (0.990 on an AVX2 EPYC, where the signed graph reads 0.79).
    assert cosine(read, exact(resize_concat_conv())) > (0.9999 if has_vnni() else 0.98)
    if not ov.__version__.startswith("2026.4"):
        return
    # The defect the unsigned pairs avoid, in the version that has it: when this fails, the shim can go.
    plain = ov.Core().compile_model(ov.Core().read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert cosine(np.asarray(plain(feeds())[0]), exact(resize_concat_conv())) < 0.95


def probe_for(tmp_path) -> ArtifactProbe:
    path = tmp_path / "model.onnx"
    onnx.save(resize_concat_conv(), path)
    inputs = feeds(8)
    return ArtifactProbe(path, "onnxruntime-exact", batches=((inputs, None, {"out": exact(resize_concat_conv())}),))


def test_second_runtime_agrees_on_a_graph_both_read_right(tmp_path):
    pytest.importorskip("openvino")
    result = SECOND_RUNTIME.measure(probe_for(tmp_path))
    assert result["second"] == "openvino" and result["agree"]
    assert result["samples"] == 8 and min(result["cosine"].values()) > (0.999 if has_vnni() else 0.99)
    assert analysis_warnings({"second_runtime": result}) == []


def test_second_runtime_warns_when_the_runtimes_disagree(tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    import compress_export.runtimes.openvino as openvino_runtime

    # A second runtime that gets half the output channels' signs wrong.
    flip = np.array([1, -1, 1, -1], np.float32).reshape(1, 4, 1, 1)
    monkeypatch.setattr(openvino_runtime.OpenVinoRunner, "infer_impl",
                        lambda self, given: {"out": self._session.run(["out"], given)[0] * flip})
    result = SECOND_RUNTIME.measure(probe_for(tmp_path))
    assert not result["agree"]
    warning, = analysis_warnings({"second_runtime": result})
    assert "openvino computes this graph differently from onnxruntime-exact" in warning
    assert ("reads the graph wrongly" in warning) == has_vnni() and ("no VNNI" in warning) != has_vnni()
    (without,) = analysis_warnings({"second_runtime": {**result, "vnni": False}})
    assert "no VNNI" in without and "saturate" in without


def test_a_second_runtime_that_cannot_compile_the_graph_is_a_warning_not_a_failed_target(tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    import compress_export.runtimes.openvino as openvino_runtime
    from compress_export.errors import ExportError

    def refuse(model, threads=None):
        raise ExportError("OpenVINO cannot compile the model: could not append an elementwise post-op")

    monkeypatch.setattr(openvino_runtime, "compile_model", refuse)
    result = SECOND_RUNTIME.measure(probe_for(tmp_path))
    assert result["agree"] is None and "elementwise post-op" in result["error"]
    warning, = analysis_warnings({"second_runtime": result})
    assert warning.startswith("not cross-checked in openvino: OpenVINO cannot compile")
    assert "the second opinion failed, not the artifact" in SECOND_RUNTIME.markdown(result)[0]


def test_second_runtime_leaves_artifacts_validated_in_their_own_runtime_alone(tmp_path):
    probe = probe_for(tmp_path)
    assert SECOND_RUNTIME.measure(ArtifactProbe(probe.path, "onnxruntime", batches=probe.batches)) is None


def test_without_openvino_the_report_says_the_check_did_not_run(tmp_path, monkeypatch):
    import compress_export.metrics.second_runtime as module

    monkeypatch.setattr(module, "find_spec", lambda name: None)
    result = SECOND_RUNTIME.measure(probe_for(tmp_path))
    assert result["agree"] is None and "openvino" in result["missing"]
    assert analysis_warnings({"second_runtime": result}) == []
    assert "Not cross-checked" in SECOND_RUNTIME.markdown(result)[0]
