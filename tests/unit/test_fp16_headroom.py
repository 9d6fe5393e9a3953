"""onnx-fp16 keeps FP32 where FP16 would overflow on the calibration data, and nowhere else."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from compress_export.exporters.onnx.fp16_headroom import mixed_fp16


def scaled_model() -> onnx.ModelProto:
    """x -> Mul 1e3 -> Mul 1e3 (about 1e6: beyond FP16's 65504) -> Mul 1e-6 -> Relu -> y."""
    nodes = [helper.make_node("Mul", ["x", "up"], ["a"], name="first"),
             helper.make_node("Mul", ["a", "up"], ["b"], name="second"),
             helper.make_node("Mul", ["b", "down"], ["c"], name="third"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8])],
                              [numpy_helper.from_array(np.float32(1e3), "up"),
                               numpy_helper.from_array(np.float32(1e-6), "down")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def written_type(model: onnx.ModelProto, node_name: str) -> int:
    """The element type of what the named node writes."""
    inferred = onnx.shape_inference.infer_shapes(model)
    output = next(node.output[0] for node in model.graph.node if node.name == node_name)
    return next(value.type.tensor_type.elem_type for value in (*inferred.graph.value_info, *inferred.graph.output)
                if value.name == output)


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # no folding of the Mul chain
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_layers_beyond_fp16_headroom_stay_fp32_and_the_output_stays_right():
    x = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    model = scaled_model()
    guarded, kept = mixed_fp16(model, model, {"x": x})
    assert set(kept) == {"second", "third"}  # they write or read the 1e6 tensor; 1e3 fits, and so does the Relu
    np.testing.assert_allclose(run(guarded, x), run(model, x), rtol=1e-3, atol=1e-6)
    plain, none_kept = mixed_fp16(model, model, None)
    assert none_kept == []
    # onnxruntime's CPU kernels widen FP16 on the way, so the overflow shows in the types a GPU runtime computes in
    assert written_type(plain, "second") == TensorProto.FLOAT16 and written_type(guarded, "second") == TensorProto.FLOAT
    assert written_type(guarded, "relu") == written_type(plain, "relu") == TensorProto.FLOAT16
