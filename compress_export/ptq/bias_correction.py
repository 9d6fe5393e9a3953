"""Bias correction (Nagel et al. 2019, empirical): rounding a weight matrix shifts each output channel's mean
by (W_int8 - W) @ E[x]; the bias absorbs that shift, so the quantized layer's outputs keep the FP32 mean.
E[x] is the mean input row (patch) over the calibration data, padding included."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from .layers import WeightLayer, grid_scale, round_to_grid, shared
from .statistics import LayerInputs


def mean_shift(layer: WeightLayer, unrounded: np.ndarray, shipped: np.ndarray, inputs: LayerInputs,
               per_channel: bool) -> np.ndarray:
    """[out]: the mean of (INT8 layer - FP32 layer) over the calibration inputs; `shipped` is the weight the
    quantizer will round (already on its grid after learned rounding), `unrounded` the FP32 weight it replaces."""
    matrix = layer.as_matrix(shipped).astype(np.float64)
    scale = grid_scale(matrix, per_channel)
    error = round_to_grid(matrix, scale) * scale - layer.as_matrix(unrounded).astype(np.float64)
    rows = error.shape[0] // inputs.groups
    return np.concatenate([error[g * rows:(g + 1) * rows] @ inputs.mean(g) for g in range(inputs.groups)])


def correct_bias(model: onnx.ModelProto, layer: WeightLayer, shift: np.ndarray) -> bool:
    """Subtracts `shift` from the layer's bias, adding a bias where a Conv or Gemm has none; a MatMul's bias is
    the one-row constant of the Add that alone reads it. False where no bias of its own can take it."""
    inits = {init.name: init for init in model.graph.initializer}
    node = next(n for n in model.graph.node if n.name == layer.node)
    beta = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "beta"), 1.0)
    if layer.op_type == "Gemm":
        shift = shift / beta if beta else shift * 0
    if layer.op_type == "MatMul":
        name = _matmul_bias(model, layer, len(shift))
    else:
        name = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if name is None:
        if layer.op_type == "MatMul" or not beta:
            return False
        name = f"{layer.node}.corrected_bias"
        model.graph.initializer.append(numpy_helper.from_array((-shift).astype(np.float32), name))
        node.input.extend([""] * (2 - len(node.input)) + [name])
        return True
    if name not in inits or shared(model, name) or inits[name].data_type != onnx.TensorProto.FLOAT:
        return False
    bias = numpy_helper.to_array(inits[name])
    if bias.size != shift.size:
        return False
    inits[name].CopyFrom(numpy_helper.from_array((bias - shift.reshape(bias.shape)).astype(bias.dtype), name))
    return True


def _matmul_bias(model: onnx.ModelProto, layer: WeightLayer, width: int) -> str | None:
    readers = [n for n in model.graph.node if layer.output in n.input]
    if len(readers) != 1 or readers[0].op_type != "Add" or layer.output in (o.name for o in model.graph.output):
        return None
    other = next((name for name in readers[0].input if name != layer.output), None)
    init = next((i for i in model.graph.initializer if i.name == other), None)
    if init is None or list(init.dims) != [width] or init.data_type != onnx.TensorProto.FLOAT:
        return None
    return other
