"""The trt-int8 graph's float layers in FP16: layers whose outputs near FP16's limit on the calibration data stay
FP32. TensorRT computes each tensor in the type the graph gives it; onnxruntime's CPU casts FP16 layers back to
FP32, so the check is on the graph's types, and on the guarded graph's outputs."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compress_export.exporters.tensorrt.fp16 import to_mixed_fp16
from compress_export.exporters.tensorrt.lint import FP16_QDQ_OPSET
from compress_export.graphs.onnx_io import session


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    big = numpy_helper.from_array((rng.standard_normal((8, 8)) * 3e4).astype(np.float32), "big")
    small = numpy_helper.from_array((rng.standard_normal((8, 4)) * 1e-4).astype(np.float32), "small")
    nodes = [helper.make_node("MatMul", ["x", "big"], ["wide"], name="widen"),
             helper.make_node("MatMul", ["wide", "small"], ["y"], name="narrow")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])], [big, small])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return session(model).run(None, {"x": x})[0]


def _type_read(model: onnx.ModelProto, node_name: str) -> int:
    """The type of the tensor a node reads first."""
    name = next(node.input[0] for node in model.graph.node if node.name == node_name)
    return next(v.type.tensor_type.elem_type for v in model.graph.value_info if v.name == name)


def test_layers_beyond_fp16_headroom_stay_fp32_and_keep_outputs_finite():
    model = _model()
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    exact = _run(model, x)
    assert np.abs(x @ numpy_helper.to_array(model.graph.initializer[0])).max() > 65504
    blind = to_mixed_fp16(model, model, None)
    assert blind.kept_fp32 == () and _type_read(blind.model, "narrow") == TensorProto.FLOAT16  # overflows in TensorRT
    guarded = to_mixed_fp16(model, model, {"x": x})
    assert guarded.kept_fp32 == ("widen", "narrow")
    assert next(o.version for o in guarded.model.opset_import if o.domain == "") == FP16_QDQ_OPSET
    assert _type_read(guarded.model, "narrow") == TensorProto.FLOAT
    result = _run(guarded.model, x)
    assert np.all(np.isfinite(result)) and np.allclose(result, exact, rtol=2e-2, atol=2e-2 * np.abs(exact).max())
    types = {init.name: init.data_type for init in guarded.model.graph.initializer}
    assert types["big"] == TensorProto.FLOAT  # not clamped to FP16


def _qdq_model(scale: float) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """x -> Mul 1e5 -> `wide` (about 1e5: past FP16's 65504) -> Mul 1e-5 -> y; and the same with `wide` through a
    Q/DQ pair of `scale`, as trt-int8 writes it (node names shared)."""
    def graph(qdq: bool) -> onnx.ModelProto:
        read = "wide_dq" if qdq else "wide"
        nodes = [helper.make_node("Mul", ["x", "up"], ["wide"], name="widen"),
                 *([helper.make_node("QuantizeLinear", ["wide", "s", "z"], ["wide_q"], name="wide_QuantizeLinear"),
                    helper.make_node("DequantizeLinear", ["wide_q", "s", "z"], ["wide_dq"],
                                     name="wide_DequantizeLinear")] if qdq else []),
                 helper.make_node("Mul", [read, "down"], ["y"], name="narrow")]
        constants = [numpy_helper.from_array(np.float32(1e5), "up"), numpy_helper.from_array(np.float32(1e-5), "down"),
                     numpy_helper.from_array(np.float32(scale), "s"), numpy_helper.from_array(np.int8(0), "z")]
        body = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
                                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8])], constants)
        return helper.make_model(body, opset_imports=[helper.make_opsetid("", 13)])

    return graph(False), graph(True)


def test_a_wide_tensors_qdq_pair_stays_fp32_when_the_whole_calibration_set_saw_it_wide():
    x = np.linspace(-3, 3, 32, dtype=np.float32).reshape(4, 8)
    fp32, qdq = _qdq_model(scale=3e5 / 127)
    exact = _run(qdq, x)
    # The first batch stays inside FP16 (x / 100: about 3e3); the calibration set's peak, 3e5, does not.
    mixed = to_mixed_fp16(qdq, fp32, {"x": x / 100}, known_peaks={"wide": 3e5})
    assert {"widen", "narrow", "wide_QuantizeLinear", "wide_DequantizeLinear"} <= set(mixed.kept_fp32)
    types = {init.name: init.data_type for init in mixed.model.graph.initializer}
    assert types["s"] == TensorProto.FLOAT
    result = _run(mixed.model, x)
    assert np.all(np.isfinite(result)) and np.allclose(result, exact, rtol=1e-3, atol=1e-3)
    first_batch_only = to_mixed_fp16(qdq, fp32, {"x": x / 100})
    assert "widen" not in first_batch_only.kept_fp32  # what the guard missed before it read the calibration's peaks
    assert {"wide_QuantizeLinear", "wide_DequantizeLinear"} <= set(first_batch_only.kept_fp32)  # the scale alone
