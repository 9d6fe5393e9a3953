"""FLOPs/MACs/parameters against a hand count, and the per-layer error table on a graph whose error is known."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress_export.metrics.flops import count_model


def _conv_model() -> onnx.ModelProto:
    """x (N,3,8,8) -> Conv 3->4 k3 pad1 -> depthwise Conv k3 pad1 (group 4) -> Flatten -> Gemm 256->10;
    and a MatMul branch (N,5,16) @ (16,8)."""
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.normal(size=(4, 3, 3, 3)), "b1": rng.normal(size=4),
        "w2": rng.normal(size=(4, 1, 3, 3)), "b2": rng.normal(size=4),
        "w3": rng.normal(size=(10, 256)), "b3": rng.normal(size=10),
        "w4": rng.normal(size=(16, 8)),
    }
    inits = [numpy_helper.from_array(value.astype(np.float32), name) for name, value in weights.items()]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2", "b2"], ["c2"], name="depthwise", pads=[1, 1, 1, 1], group=4),
        helper.make_node("Flatten", ["c2"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
        helper.make_node("MatMul", ["t", "w4"], ["z"], name="mm"),
    ]
    graph = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8]),
                               helper.make_tensor_value_info("t", TensorProto.FLOAT, ["batch", "seq", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10]),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", "seq", 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# Hand count per sample: conv 4*8*8 outputs x 3*3*3 = 6912; depthwise 4*8*8 x 1*3*3 = 2304;
# Gemm 10 x 256 = 2560; MatMul with seq 5: 5*8 outputs x 16 = 640.
HAND_MACS = 6912 + 2304 + 2560 + 640
HAND_PARAMETERS = 108 + 4 + 36 + 4 + 2560 + 10 + 128


def test_flops_match_a_hand_count():
    counted = count_model(_conv_model(), {"t": (32, 5, 16)})
    assert counted["macs"] == HAND_MACS
    assert counted["flops"] == 2 * HAND_MACS
    assert counted["parameters"] == HAND_PARAMETERS
    assert counted["compute_ops"] == 4 and counted["compute_ops_without_shape"] == 0


def test_flops_follow_the_dynamic_dimensions_of_the_data():
    short = count_model(_conv_model(), {"t": (1, 5, 16)})["macs"]
    long = count_model(_conv_model(), {"t": (1, 10, 16)})["macs"]
    assert long - short == 640  # the MatMul doubles, nothing else moves


def test_qdq_model_counts_the_same_compute_and_weights(tmp_path):
    from compress_export.exporters.onnx.qdq import quantize_with_ranges

    onnx.save_model(_conv_model(), str(tmp_path / "fp32.onnx"))
    ranges = {name: (-8.0, 8.0) for name in ("x", "c1", "c2", "f", "t", "y", "z")}
    quantize_with_ranges(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", ranges, ["conv", "depthwise", "fc", "mm"],
                         ["Conv", "Gemm", "MatMul"], per_channel=True, symmetric_activations=False)
    counted = count_model(onnx.load(str(tmp_path / "int8.onnx")), {"t": (1, 5, 16)})
    assert counted["macs"] == HAND_MACS
    assert counted["parameters"] == HAND_PARAMETERS  # scales and zero points are not parameters


def test_layer_error_finds_the_tensor_with_the_coarse_range(tmp_path):
    from compress_export.exporters.onnx.qdq import quantize_with_ranges
    from compress_export.metrics.base import ArtifactProbe
    from compress_export.metrics.layer_error import METRIC

    onnx.save_model(_conv_model(), str(tmp_path / "fp32.onnx"))
    rng = np.random.default_rng(1)
    feeds = {"x": rng.normal(size=(8, 3, 8, 8)).astype(np.float32),
             "t": rng.normal(size=(8, 5, 16)).astype(np.float32)}
    ranges = {"x": (-4.0, 4.0), "c1": (-30.0, 30.0), "c2": (-60.0, 60.0), "f": (-60.0, 60.0),
              "t": (-4000.0, 4000.0), "y": (-60.0, 60.0), "z": (-60.0, 60.0)}  # t: 1000x too wide
    quantize_with_ranges(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", ranges, ["conv", "depthwise", "fc", "mm"],
                         ["Conv", "Gemm", "MatMul"], per_channel=True, symmetric_activations=False)
    result = METRIC.measure(ArtifactProbe(tmp_path / "int8.onnx", "onnxruntime", tmp_path / "fp32.onnx",
                                          ((feeds, None, {}),)))
    rows = {row["tensor"]: row for row in result["tensors"]}
    assert set(rows) == {"x", "c1", "c2", "f", "t"}
    assert result["worst"][0] == "t" and rows["t"]["cosine"] < 0.9
    assert rows["x"]["cosine"] > 0.999 and rows["x"]["sqnr_db"] > 30
    assert result["samples"] == 8
    assert "| `t` |" in "\n".join(METRIC.markdown(result))


def test_layer_error_does_not_apply_to_a_float_artifact(tmp_path):
    from compress_export.metrics.base import ArtifactProbe
    from compress_export.metrics.layer_error import METRIC

    onnx.save_model(_conv_model(), str(tmp_path / "fp32.onnx"))
    feeds = {"x": np.zeros((2, 3, 8, 8), np.float32), "t": np.zeros((2, 5, 16), np.float32)}
    probe = ArtifactProbe(tmp_path / "fp32.onnx", "onnxruntime", tmp_path / "fp32.onnx", ((feeds, None, {}),))
    assert METRIC.measure(probe) is None


@pytest.mark.parametrize("name", ["onnx", "onnx-int8", "trt-int8", "tflite", "tflite-int8"])
def test_every_declared_target_export_resolves(name):
    import importlib

    from compress_export.exporters import get_target

    target = get_target(name)
    module, _, function = target.export.partition(":")
    if target.extra != "core" and importlib.util.find_spec(module) is None:
        pytest.skip(f"{target.extra} extra not installed")
    assert callable(getattr(importlib.import_module(module), function))
