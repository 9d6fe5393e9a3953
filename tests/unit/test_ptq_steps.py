"""Each PTQ weight step does what it claims, and fails these tests when switched off or wrong."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress_export.exporters.onnx.qdq import quantize_with_ranges
from compress_export.ptq.bias_correction import correct_bias, mean_shift
from compress_export.ptq.equalization import conv_pairs, equalize
from compress_export.ptq.layers import grid_scale, initializers, round_to_grid, weight_layers
from compress_export.ptq.learned_rounding import rounded_weights
from compress_export.ptq.smoothing import smooth, smoothing_sites
from compress_export.ptq.statistics import layer_inputs
from compress_export.ptq.steps import StepInputs, apply_steps

RNG = np.random.default_rng(0)


def _conv_model(scales=None) -> onnx.ModelProto:
    """x[1,4,12,12] -> Conv(8, 3x3) -> Relu -> Conv(6, 3x3, stride 2) -> y; channel ranges far apart."""
    first = RNG.standard_normal((8, 4, 3, 3)).astype(np.float32)
    first *= (scales if scales is not None else np.ones(8)).reshape(-1, 1, 1, 1).astype(np.float32)
    second = RNG.standard_normal((6, 8, 3, 3)).astype(np.float32) * 0.1
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="conv1", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["h"], ["r"], name="relu"),
         helper.make_node("Conv", ["r", "w2", "b2"], ["y"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(first, "w1"), numpy_helper.from_array(RNG.standard_normal(8).astype(np.float32), "b1"),
         numpy_helper.from_array(second, "w2"), numpy_helper.from_array(np.zeros(6, np.float32), "b2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


class Batches:
    """What the steps read of calibration data: its batches, again on every pass."""

    def __init__(self, x: np.ndarray, batch: int = 8):
        self.x, self.batch = x, batch

    def batches(self):
        for start in range(0, len(self.x), self.batch):
            yield {"x": self.x[start:start + self.batch]}


def _data(shape, offset=0.0, samples=32) -> Batches:
    mixed = RNG.standard_normal((samples, *shape)).astype(np.float32)
    return Batches(mixed + 0.8 * np.roll(mixed, 1, axis=1) + offset)  # correlated channels, a non-zero mean


def _run(model: onnx.ModelProto, data: Batches) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, feeds)[0] for feeds in data.batches()])


def test_the_grid_is_the_quantizers_so_snapped_weights_come_back_as_the_same_integers(tmp_path: Path):
    model = _conv_model(scales=np.geomspace(0.01, 10, 8))
    data = _data((4, 12, 12))
    layers = weight_layers(model)
    stats = layer_inputs(model, layers, data)
    values = initializers(model)
    snapped = {layer.weight: rounded_weights(layer, values[layer.weight], stats[layer.node], True) for layer in layers}
    for name, value in snapped.items():
        for init in model.graph.initializer:
            if init.name == name:
                init.CopyFrom(numpy_helper.from_array(value, name))
    onnx.save(model, tmp_path / "fp32.onnx")
    ranges = {"x": (-4, 4), "r": (0, 6), "h": (-6, 6), "y": (-6, 6)}
    quantize_with_ranges(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", ranges,
                         ["conv1", "conv2"], ["Conv"], per_channel=True, symmetric_activations=False)
    quantized = initializers(onnx.load(tmp_path / "int8.onnx"))
    for layer in layers:
        matrix = layer.as_matrix(snapped[layer.weight]).astype(np.float64)
        scale = grid_scale(matrix, True)
        levels = quantized[f"{layer.weight}_quantized"].reshape(len(matrix), -1)
        np.testing.assert_allclose(quantized[f"{layer.weight}_scale"], scale[:, 0], rtol=1e-6)
        np.testing.assert_array_equal(levels, round_to_grid(matrix, scale))


def test_learned_rounding_lowers_the_layers_reconstruction_error_against_nearest_rounding():
    model = _conv_model()
    data = _data((4, 12, 12), samples=64)
    layer = weight_layers(model)[0]
    stats = layer_inputs(model, [layer], data)[layer.node]
    weight = initializers(model)[layer.weight]
    matrix = layer.as_matrix(weight).astype(np.float64)
    scale = grid_scale(matrix, True)
    nearest = round_to_grid(matrix, scale) * scale
    learned = layer.as_matrix(rounded_weights(layer, weight, stats, True)).astype(np.float64)
    hessian = stats.hessian(0)

    def error(candidate):  # E ||(W' - W) x||^2 over the layer's real inputs
        delta = candidate - matrix
        return float(np.einsum("oi,ij,oj->", delta, hessian, delta))

    assert not np.array_equal(learned, nearest)
    assert error(learned) < 0.8 * error(nearest)
    np.testing.assert_allclose(np.abs(learned / scale).max(axis=1), 127, rtol=1e-6)  # the grid does not move


def test_bias_correction_changes_each_bias_by_the_measured_mean_error():
    model = _conv_model(scales=np.geomspace(0.05, 5, 8))
    data = _data((4, 12, 12), offset=1.5)
    layer = weight_layers(model)[0]
    weight = initializers(model)[layer.weight]
    rounded = onnx.ModelProto.FromString(model.SerializeToString())
    matrix = layer.as_matrix(weight).astype(np.float64)
    scale = grid_scale(matrix, True)
    dequantized = layer.from_matrix((round_to_grid(matrix, scale) * scale).astype(np.float32), weight.shape)
    for init in rounded.graph.initializer:
        if init.name == layer.weight:
            init.CopyFrom(numpy_helper.from_array(dequantized, init.name))
    head = _only(model, "h")
    measured = (_run(_only(rounded, "h"), data) - _run(head, data)).mean(axis=(0, 2, 3))
    assert np.abs(measured).max() > 1e-3
    stats = layer_inputs(model, [layer], data)[layer.node]
    shift = mean_shift(layer, weight, weight, stats, True)
    np.testing.assert_allclose(shift, measured, atol=2e-3 * np.abs(measured).max() + 1e-5)
    before = initializers(model)["b1"].copy()
    assert correct_bias(model, layer, shift)
    np.testing.assert_allclose(initializers(model)["b1"], before - shift, rtol=1e-6)


def _only(model: onnx.ModelProto, output: str) -> onnx.ModelProto:
    cut = onnx.ModelProto.FromString(model.SerializeToString())
    del cut.graph.output[:]
    cut.graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, None))
    return cut


def test_equalization_keeps_fp32_outputs_equal_and_evens_the_channel_ranges():
    model = _conv_model(scales=np.geomspace(0.01, 10, 8))
    data = _data((4, 12, 12))
    before = _run(model, data)
    spread = _channel_spread(model)
    assert [(pair.first.name, pair.second.name) for pair in conv_pairs(model)] == [("conv1", "conv2")]
    assert equalize(model) == 1
    np.testing.assert_allclose(_run(model, data), before, rtol=1e-4, atol=1e-4 * np.abs(before).max())
    assert _channel_spread(model) < spread / 10


def _channel_spread(model: onnx.ModelProto) -> float:
    ranges = np.abs(initializers(model)["w1"]).reshape(8, -1).max(axis=1)
    return float(ranges.max() / ranges.min())


def test_equalization_leaves_a_pair_joined_by_a_clip_alone():
    model = _conv_model()
    model.graph.node[1].op_type = "Sigmoid"
    assert conv_pairs(model) == []


def _norm_model() -> onnx.ModelProto:
    """x[n,5,16] -> LayerNormalization(gamma with one outlier channel) -> MatMul(16x12) -> y"""
    gamma = np.ones(16, np.float32)
    gamma[3] = 40.0
    graph = helper.make_graph(
        [helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["n"], name="norm", axis=-1),
         helper.make_node("MatMul", ["n", "w"], ["y"], name="proj")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 5, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(gamma, "gamma"), numpy_helper.from_array(np.full(16, 0.1, np.float32), "beta"),
         numpy_helper.from_array(RNG.standard_normal((16, 12)).astype(np.float32) * 0.2, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_smoothquant_moves_the_outlier_into_the_weights_with_fp32_outputs_equal():
    model = _norm_model()
    data = Batches(RNG.standard_normal((16, 5, 16)).astype(np.float32))
    before = _run(model, data)
    peak = _channel_peaks(model, data)
    assert [site.activation for site in smoothing_sites(model)] == ["n"]
    assert smooth(model, data) == 1
    np.testing.assert_allclose(_run(model, data), before, rtol=1e-4, atol=1e-5)
    after = _channel_peaks(model, data)
    assert after.max() / np.median(after) < 0.5 * peak.max() / np.median(peak)


def _channel_peaks(model: onnx.ModelProto, data: Batches) -> np.ndarray:
    return np.abs(_run(_only(model, "n"), data)).reshape(-1, 16).max(axis=0)


@pytest.mark.parametrize("steps", [("learned-rounding",), ("bias-correction",),
                                   ("learned-rounding", "bias-correction")])
def test_each_weight_step_changes_the_weights_the_quantizer_reads(steps):
    model = _conv_model(scales=np.geomspace(0.05, 5, 8))
    data = _data((4, 12, 12), offset=1.0)
    before = initializers(model)
    inputs = StepInputs(data, True, {"conv1", "conv2"})
    changed = apply_steps(model, steps, inputs)
    assert all(changed[name] == 2 for name in steps)
    after = initializers(model)
    moved = {name for name in before if not np.array_equal(before[name], after[name])}
    expected = (({"w1", "w2"} if "learned-rounding" in steps else set())
                | ({"b1", "b2"} if "bias-correction" in steps else set()))
    assert moved == expected
    assert apply_steps(onnx.ModelProto.FromString(model.SerializeToString()), (), inputs) == {}


def test_targets_quantizing_other_layers_of_one_graph_do_not_share_layer_inputs():
    data, shared = _data((4, 12, 12)), {}
    first = _conv_model()
    second = onnx.ModelProto.FromString(first.SerializeToString())  # one graph: the cache sees one digest
    counts_one = apply_steps(first, ["bias-correction"], StepInputs(data, True, {"conv1"}, statistics=shared))
    counts_both = apply_steps(second, ["bias-correction"], StepInputs(data, True, {"conv1", "conv2"},
                                                                      statistics=shared))
    assert counts_one["bias-correction"] == 1 and counts_both["bias-correction"] == 2
