"""Core behaviours that must break the default suite when they break: each calibrator gives its own
ranges, float readers of a quantized tensor get the exact tensor, and QAT really trains."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress_export.calibration.histogram import TensorHistogram
from compress_export.calibration.methods import CALIBRATORS, compute_ranges


def _outlier_values(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, 200_000).astype(np.float32)
    values[:20] = 40.0  # a few large outliers, as after GELU or in residual sums
    return values


def test_each_calibrator_gives_its_own_ranges_on_data_with_outliers():
    hist = TensorHistogram(2048)
    values = _outlier_values()
    hist.update(values)
    ranges = {method: compute_ranges({"t": hist}, method, percentile=99.9)["t"] for method in CALIBRATORS}
    assert ranges["minmax"] == (float(values.min()), 40.0)
    highs = {method: hi for method, (_, hi) in ranges.items()}
    assert len(set(highs.values())) == len(CALIBRATORS), highs  # four different answers
    for method in ("percentile", "entropy"):
        assert highs[method] < 20.0, method  # each clips the outliers, minmax does not
    assert highs["mse"] < highs["minmax"]  # mse weighs clipping error against rounding error: it trims less
    assert highs["percentile"] == pytest.approx(np.percentile(values, 99.9), abs=2 * hist.bin_width)


def _relu_model(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    weight = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
                               helper.make_node("Relu", ["h"], ["y"], name="relu")], "g", [x], [y], [weight])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.mark.parametrize("method", sorted(CALIBRATORS))
def test_calibration_step_uses_the_chosen_calibrator(tmp_path, method):
    from compress_export.calibration.calibrate import calibrate_onnx
    from compress_export.data.calibration_data import load_npz_data
    from compress_export.specs import QuantRecipe, TensorSpec

    _relu_model(tmp_path / "m.onnx")
    values = _outlier_values().reshape(-1, 4)[:20_000]
    np.savez(tmp_path / "d.npz", x=values)
    data = load_npz_data(tmp_path / "d.npz", (TensorSpec("x", ("batch", 4)),), 1000)
    tables = {name: calibrate_onnx(tmp_path / "m.onnx", data, QuantRecipe(method=name, percentile=99.9), False)
              for name in CALIBRATORS}
    mine = tables[method].ranges["x"]
    others = [table.ranges["x"] for name, table in tables.items() if name != method]
    assert mine not in others


def _residual_graph(path):
    """h = x @ w1; y = h @ w2 + h: the Add reads h beside a quantized MatMul and stays in float."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])
    weights = [numpy_helper.from_array(rng.normal(size=(8, 8)).astype(np.float32), name) for name in ("w1", "w2")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("MatMul", ["h", "w2"], ["p"], name="mm2"),
             helper.make_node("Add", ["p", "h"], ["y"], name="residual")]
    graph = helper.make_graph(nodes, "g", [x], [y], weights)
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return onnx.load(str(path))


def test_float_readers_get_the_exact_tensor(tmp_path):
    from compress_export.exporters.onnx.qdq import detach_float_readers, quantize_with_ranges

    original = _residual_graph(tmp_path / "fp32.onnx")
    out = tmp_path / "int8.onnx"
    ranges = {"x": (-4.0, 4.0), "h": (-20.0, 20.0), "p": (-60.0, 60.0)}
    quantize_with_ranges(tmp_path / "fp32.onnx", out, ranges, ["mm1", "mm2"], ["MatMul"], per_channel=True,
                         symmetric_activations=False,
                         extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]})
    detach_float_readers(out, original, ["mm1", "mm2"])
    model = onnx.load(str(out))
    add = next(node for node in model.graph.node if node.name == "residual")
    assert "h" in add.input  # the exact float tensor, not its DequantizeLinear copy
    mm2 = next(node for node in model.graph.node if node.op_type == "MatMul" and "w2" in "".join(node.input))
    producer = {out: node.op_type for node in model.graph.node for out in node.output}
    assert producer[mm2.input[0]] == "DequantizeLinear"  # the quantized reader still reads INT8


def test_qat_changes_weights_and_ranges_and_lowers_the_loss():
    torch = pytest.importorskip("torch")
    from compress_export.calibration.range_table import RangeTable
    from compress_export.compression.qat_settings import QatSettings
    from compress_export.compression.qat_torch import fine_tune
    from compress_export.data.calibration_data import load_npz_data
    from compress_export.specs import TensorSpec

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    rng = np.random.default_rng(0)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.npz"
        np.savez(path, x=rng.normal(size=(64, 6)).astype(np.float32))
        data = load_npz_data(path, (TensorSpec("x", ("batch", 6)),), 16)

        def forward(model, feeds):
            return {"y": model(torch.as_tensor(feeds["x"]))}

        # Deliberately narrow ranges: training must widen them.
        table = RangeTable("minmax", {"in0": (-0.5, 0.5), "in2": (0.0, 0.5)}, "sha", "fp")
        before = {name: value.clone() for name, value in module.state_dict().items()}
        student, result = fine_tune(module, forward, {"0": "in0", "2": "in2"}, table, data,
                                    QatSettings(epochs=1, steps=30, lr=1e-2, seed=0))
    changed = [name for name, value in student.state_dict().items() if not torch.equal(value, before[name])]
    assert set(changed) == set(before)  # every weight and bias moved
    assert all(torch.equal(value, before[name]) for name, value in module.state_dict().items())  # teacher untouched
    assert result.ranges["in0"] != pytest.approx((-0.5, 0.5), abs=1e-3)
    assert result.ranges["in2"] != pytest.approx((0.0, 0.5), abs=1e-3)
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])


def test_the_exact_runner_computes_qdq_arithmetic_as_written(tmp_path):
    """The trt-int8 proxy: INT8 values, exact products and sums, as TensorRT computes them (onnxruntime's
    fused signed-INT8 kernels may saturate on CPUs without VNNI; this runner must not)."""
    from compress_export.exporters.onnx.qdq import quantize_with_ranges
    from compress_export.runtimes import open_runner
    from tests.corpus.assets import mlp, mlp_data, mlp_weights

    onnx.save_model(mlp(), str(tmp_path / "fp32.onnx"))
    ranges = {"x": (-3.0, 3.0), "r": (0.0, 6.0)}
    quantize_with_ranges(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", {k: (-max(map(abs, v)), max(map(abs, v)))
                                                                          for k, v in ranges.items()},
                         ["mm1", "mm2"], ["MatMul"], per_channel=True, symmetric_activations=True,
                         extra_options={"QuantizeBias": False, "OpTypesToExcludeOutputQuantization": ["MatMul"]})
    x = mlp_data(32, seed=3)["x"]

    def fake_quant(value, amax):
        scale = np.float32(amax) / np.float32(127)
        return np.clip(np.round(value / scale), -128, 127).astype(np.float32) * scale

    def per_channel(weight):
        scale = np.abs(weight).max(axis=0) / np.float32(127)
        return np.clip(np.round(weight / scale), -127, 127) * scale

    w1, w2 = mlp_weights()
    hidden = np.maximum(fake_quant(x, 3.0) @ per_channel(w1), 0)
    expected = fake_quant(hidden, 6.0) @ per_channel(w2)
    with open_runner("onnxruntime-exact", str(tmp_path / "int8.onnx")) as runner:
        produced = runner.infer({"x": x})["logits"]
    np.testing.assert_allclose(produced, expected, rtol=1e-4, atol=1e-4)


def test_a_tensor_read_only_inside_an_if_branch_keeps_its_producer(tmp_path):
    """h feeds a quantized MatMul and, by outer-scope reference, an If branch: detaching float readers must
    not drop the Q/DQ pair the branch still reads, nor leave the branch without its tensor."""
    import onnxruntime as ort

    from compress_export.exporters.onnx.qdq import detach_float_readers, quantize_with_ranges

    rng = np.random.default_rng(0)
    branch_out = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 8])
    then_branch = helper.make_graph([helper.make_node("Relu", ["h"], ["b"], name="then_relu")], "then", [],
                                    [branch_out])
    else_branch = helper.make_graph([helper.make_node("Neg", ["h"], ["b"], name="else_neg")], "else", [],
                                    [branch_out])
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("MatMul", ["h", "w2"], ["p"], name="mm2"),
             helper.make_node("If", ["flag"], ["y"], name="branch", then_branch=then_branch,
                              else_branch=else_branch)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8]),
                     helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", 8]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        [numpy_helper.from_array(rng.normal(size=(8, 8)).astype(np.float32), name) for name in ("w1", "w2")])
    original = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(original, str(tmp_path / "fp32.onnx"))
    quantize_with_ranges(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", {"x": (-4, 4), "h": (-20, 20)},
                         ["mm1", "mm2"], ["MatMul"], per_channel=True, symmetric_activations=False,
                         extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]})
    detach_float_readers(tmp_path / "int8.onnx", original, ["mm1", "mm2"])
    onnx.checker.check_model(str(tmp_path / "int8.onnx"), full_check=True)
    x = rng.normal(size=(4, 8)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "int8.onnx"))
    _, y = session.run(None, {"x": x, "flag": np.array(True)})
    reference = ort.InferenceSession(str(tmp_path / "fp32.onnx")).run(None, {"x": x, "flag": np.array(True)})[1]
    assert np.allclose(y, reference, atol=0.5)  # the branch reads h (through its Q/DQ or exactly), not garbage
