"""Models whose inputs do not keep their samples on axis 0 (a recurrent state `[2, batch, hidden]`, a scalar
sample rate), and models whose compute sits inside If bodies: data files in the model's own layout run
end to end, and the quantized targets that cannot apply fail one by one while the float ones are built."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress_export.data.layout import batch_axis, model_feeds, sample_major_outputs
from compress_export.job import PipelineConfig
from compress_export.pipeline import run


def stateful_model(path):
    """y = (x @ W) * rate + mean over layers of state; state_out = state * 0.5 + 1 (same layout as state)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (8, 4)).astype(np.float32), "w"),
             numpy_helper.from_array(np.float32(0.5), "half"), numpy_helper.from_array(np.float32(1.0), "one"),
             numpy_helper.from_array(np.array([0], np.int64), "axes")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"], name="mm"),
             helper.make_node("Mul", ["xw", "rate"], ["scaled"], name="scale"),
             helper.make_node("ReduceMean", ["state", "axes"], ["pooled"], name="pool", keepdims=0),
             helper.make_node("Add", ["scaled", "pooled"], ["y"], name="add"),
             helper.make_node("Mul", ["state", "half"], ["halved"], name="decay"),
             helper.make_node("Add", ["halved", "one"], ["state_out"], name="bump")]
    graph = helper.make_graph(
        nodes, "stateful",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "batch", 4]),
         helper.make_tensor_value_info("rate", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [2, "batch", 4])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def write_stateful_data(path, count, seed):
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.normal(size=(count, 8)).astype(np.float32),
             state=rng.normal(size=(2, count, 4)).astype(np.float32), rate=np.float32(2.0))
    return path


def test_the_sample_axis_follows_the_model_layout():
    assert batch_axis(["batch", 8]) == 0
    assert batch_axis([2, "batch", 128]) == 1
    assert batch_axis([]) is None
    assert batch_axis([1, 3, "h", "w"]) == 0  # fixed batch 1 with dynamic spatial dims
    assert batch_axis([4, 3, 32, 32]) == 0


def test_feeds_go_to_the_model_layout_and_state_outputs_come_back():
    class Arg:
        def __init__(self, name, shape):
            self.name, self.shape = name, shape

    state = np.arange(3 * 2 * 4, dtype=np.float32).reshape(3, 2, 4)  # sample-major: 3 samples
    feeds, moved = model_feeds({"state": state, "rate": np.full(3, 16000, np.int64)},
                               [Arg("state", [2, "batch", 4]), Arg("rate", [])])
    assert feeds["state"].shape == (2, 3, 4) and feeds["rate"].shape == ()
    np.testing.assert_array_equal(feeds["state"][:, 1], state[1])
    (back,) = sample_major_outputs([feeds["state"] + 1], moved)
    np.testing.assert_array_equal(back, state + 1)
    from compress_export.errors import UsageError

    with pytest.raises(UsageError, match="one value per batch"):
        model_feeds({"rate": np.array([1, 2])}, [Arg("rate", [])])


def test_a_stateful_model_with_a_scalar_input_runs_every_onnx_target(tmp_path):
    model = stateful_model(tmp_path / "stateful.onnx")
    calib = write_stateful_data(tmp_path / "calib.npz", 48, seed=1)
    val = write_stateful_data(tmp_path / "val.npz", 16, seed=2)
    result = run(PipelineConfig(model=str(model), targets="onnx-int8,trt-int8,onnx-dynamic,onnx-fp16",
                                out=tmp_path / "out", calib_data=str(calib), val_data=str(val), bench=None,
                                progress=False))
    assert result.failures == [] and result.exit_code in (0, 1)
    reports = {report.target: report.to_dict() for report in result.reports}
    assert reports["onnx-fp16"]["parity"]["state_out"]["cosine"] > 0.999
    assert reports["onnx-int8"]["parity"]["y"]["cosine"] > 0.99
    assert reports["onnx-int8"]["parity"]["y"]["samples"] == 16
    quantized = onnx.load(str(tmp_path / "out" / "onnx-int8" / "model.onnx"))
    assert any(node.op_type == "QuantizeLinear" for node in quantized.graph.node)


def test_compute_only_inside_if_bodies_fails_the_int8_targets_and_builds_the_float_ones(tmp_path):
    rng = np.random.default_rng(3)
    weight = numpy_helper.from_array(rng.normal(size=(8, 4)).astype(np.float32), "w")
    branch = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["out_then"], name="mm_then")], "then", [],
                               [helper.make_tensor_value_info("out_then", TensorProto.FLOAT, ["batch", 4])])
    other = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["out_else"], name="mm_else")], "else", [],
                              [helper.make_tensor_value_info("out_else", TensorProto.FLOAT, ["batch", 4])])
    nodes = [helper.make_node("Greater", ["flag", "zero"], ["cond"], name="gt"),
             helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=branch, else_branch=other)]
    graph = helper.make_graph(nodes, "iffy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8]),
                                              helper.make_tensor_value_info("flag", TensorProto.FLOAT, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
                              [weight, numpy_helper.from_array(np.float32(0), "zero")])
    path = tmp_path / "iffy.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    for name, count in (("calib", 32), ("val", 8)):
        np.savez(tmp_path / f"{name}.npz", x=rng.normal(size=(count, 8)).astype(np.float32), flag=np.float32(1))
    result = run(PipelineConfig(model=str(path), targets="onnx-int8,trt-int8,onnx-fp16", out=tmp_path / "out",
                                calib_data=str(tmp_path / "calib.npz"), val_data=str(tmp_path / "val.npz"),
                                bench=None, progress=False))
    assert [report.target for report in result.reports] == ["onnx-fp16"] and result.reports[0].passed
    assert sorted(failure.target for failure in result.failures) == ["onnx-int8", "trt-int8"]
    assert all("inside If/Loop/Scan bodies" in failure.error for failure in result.failures)
    assert result.exit_code == 2
    assert not (tmp_path / "out" / "onnx-int8").exists()
