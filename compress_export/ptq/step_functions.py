"""Each PTQ step as the registry calls it: (model, StepInputs) -> how many layers or activations it changed."""

from __future__ import annotations

import onnx

from .bias_correction import correct_bias, mean_shift
from .equalization import equalize
from .layers import initializers, replace_initializers, shared, weight_layers
from .learned_rounding import rounded_weights
from .smoothing import smooth
from .statistics import layer_inputs
from .steps import StepInputs, graph_digest


def equalization(model: onnx.ModelProto, inputs: StepInputs) -> int:
    return equalize(model)


def smoothquant(model: onnx.ModelProto, inputs: StepInputs) -> int:
    return smooth(model, inputs.data)


def learned_rounding(model: onnx.ModelProto, inputs: StepInputs) -> int:
    layers, stats = _layers_and_inputs(model, inputs)
    values = initializers(model)
    rounded = {}
    for layer in layers:
        inputs.unrounded[layer.weight] = values[layer.weight]
        rounded[layer.weight] = rounded_weights(layer, values[layer.weight], stats[layer.node], inputs.per_channel)
    replace_initializers(model, rounded)
    return len(rounded)


def bias_correction(model: onnx.ModelProto, inputs: StepInputs) -> int:
    layers, stats = _layers_and_inputs(model, inputs)
    values = initializers(model)
    corrected = 0
    for layer in layers:
        weight = values[layer.weight]
        shift = mean_shift(layer, inputs.unrounded.get(layer.weight, weight), weight, stats[layer.node],
                           inputs.per_channel)
        corrected += correct_bias(model, layer, shift)
    return corrected


def _layers_and_inputs(model: onnx.ModelProto, inputs: StepInputs):
    """The quantized layers with a weight of their own, and their FP32 inputs before any rounding (bias
    correction after learned rounding reads the same inputs rounding did)."""
    layers = [layer for layer in weight_layers(model, inputs.nodes) if not shared(model, layer.weight)]
    digest = inputs.rounded_from if inputs.unrounded else graph_digest(model)
    inputs.rounded_from = digest
    # Targets that quantize different nodes of one graph read different layers: the key takes both.
    key = (digest, tuple(layer.node for layer in layers))
    if key not in inputs.statistics:
        inputs.statistics[key] = layer_inputs(model, layers, inputs.data)
    return layers, inputs.statistics[key]
