"""A budget no setting can meet ends in exit 1 with every bundle written and loadable: the search's fallback
rewrites keep the graph valid on models whose activations read Constant nodes (an exporter's Clip bounds),
whose weights are shared between layers, and whose If bodies read quantized tensors of the outer graph."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress_export.job import PipelineConfig
from compress_export.metrics.gates import Gates
from compress_export.pipeline import run


def awkward_model(path):
    """Conv -> Clip(bounds from Constant nodes) -> Conv(shared) -> Relu -> Conv(shared) -> If(reads the outer
    activation) -> mean -> Gemm."""
    rng = np.random.default_rng(7)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), "w_in"),
             numpy_helper.from_array(rng.normal(0, 0.3, (4, 4, 3, 3)).astype(np.float32), "w_shared"),
             numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "b_shared"),
             numpy_helper.from_array(rng.normal(0, 0.5, (3, 4)).astype(np.float32), "w_head"),
             numpy_helper.from_array(np.float32(0), "zero"),
             numpy_helper.from_array(np.float32(2), "two")]
    scalar = lambda value: helper.make_tensor("v", TensorProto.FLOAT, [], [value])  # noqa: E731
    then_body = helper.make_graph([helper.make_node("Mul", ["deep", "two"], ["then_out"], name="double")], "then",
                                  [], [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, None)])
    else_body = helper.make_graph([helper.make_node("Identity", ["deep"], ["else_out"], name="same")], "else", [],
                                  [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("Conv", ["x", "w_in"], ["stem"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Constant", [], ["low"], name="low", value=scalar(0.0)),
             helper.make_node("Constant", [], ["high"], name="high", value=scalar(6.0)),
             helper.make_node("Clip", ["stem", "low", "high"], ["clipped"], name="relu6"),
             helper.make_node("Conv", ["clipped", "w_shared", "b_shared"], ["mid"], name="first", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["mid"], ["mid_relu"], name="relu"),
             helper.make_node("Conv", ["mid_relu", "w_shared", "b_shared"], ["deep"], name="second",
                              pads=[1, 1, 1, 1]),
             helper.make_node("Greater", ["flag", "zero"], ["cond"], name="gt"),
             helper.make_node("If", ["cond"], ["branched"], name="branch", then_branch=then_body,
                              else_branch=else_body),
             helper.make_node("ReduceMean", ["branched"], ["pooled"], name="pool", axes=[2, 3], keepdims=0),
             helper.make_node("Gemm", ["pooled", "w_head"], ["y"], name="head", transB=1)]
    graph = helper.make_graph(nodes, "awkward",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8]),
                               helper.make_tensor_value_info("flag", TensorProto.FLOAT, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_an_unreachable_budget_ends_in_exit_1_with_valid_graphs(tmp_path):
    pytest.importorskip("openvino", reason="openvino not installed")
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    for name, count in (("calib", 48), ("val", 24)):
        np.savez(tmp_path / f"{name}.npz", x=rng.normal(size=(count, 1, 8, 8)).astype(np.float32),
                 flag=np.float32(1))
    result = run(PipelineConfig(model=str(awkward_model(tmp_path / "awkward.onnx")),
                                targets="onnx-int8,trt-int8,openvino-int8", out=tmp_path / "out",
                                calib_data=str(tmp_path / "calib.npz"), val_data=str(tmp_path / "val.npz"),
                                gates=Gates(min_cosine=1.0), bench=None, progress=False))
    assert not result.failures, [failure.error for failure in result.failures]
    assert result.exit_code == 1
    for target in ("onnx-int8", "trt-int8", "openvino-int8"):
        report = json.loads((tmp_path / "out" / target / "report.json").read_text())
        assert report["passed"] is False and report["sensitivity"]["budget_met"] is False
        assert report["sensitivity"]["with_fallback"]["cosine"] == report["parity"]["y"]["cosine"]
    for target in ("onnx-int8", "trt-int8"):
        path = tmp_path / "out" / target / "model.onnx"
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
