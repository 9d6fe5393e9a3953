"""Our calibrators on a Keras model: each quantization point's output streamed into a histogram, and
the ranges injected as fake-quant ops that the TFLite converter turns into INT8 scales."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

from ...calibration.collector import unquantizable
from ...calibration.histogram import TensorHistogram
from ...calibration.methods import compute_ranges
from ...calibration.range_table import RangeTable
from ...data.calibration_data import CalibrationData
from ...runtimes.keras import keras_inputs
from ...specs import QuantRecipe

# Layers whose output range is their input's: the converter gives them the producer's scale.
TRANSPARENT = {"InputLayer", "Flatten", "Reshape", "Dropout", "SpatialDropout2D", "Permute", "MaxPooling1D",
               "MaxPooling2D", "MaxPooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "ZeroPadding2D",
               "Cropping2D", "Identity"}
# Folded by the converter into the Conv/Dense before them: a fake-quant in between would block that.
FOLDED = {"BatchNormalization", "ReLU", "Activation", "LeakyReLU"}


def as_functional(model):
    """A Sequential model as a functional one over the same layers (the cloning hook needs the graph)."""
    import keras

    if not isinstance(model, keras.Sequential):
        return model
    inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
    tensor = inputs
    for layer in model.layers:
        tensor = layer(tensor)
    return keras.Model(inputs, tensor, name=model.name)


def _readers(model) -> dict[str, list[str]]:
    readers: dict[str, list[str]] = {}

    def walk(value, reader: str) -> None:
        if isinstance(value, dict):
            history = value.get("keras_history") if "keras_history" in value else None
            if history:
                readers.setdefault(history[0], []).append(reader)
            for item in value.values():
                walk(item, reader)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, reader)

    for layer in model.get_config()["layers"]:
        walk(layer.get("inbound_nodes", []), layer["name"])
    return readers


def quantization_points(model) -> list[str]:
    """Layers whose float output gets its own INT8 range."""
    readers = _readers(model)
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    points = []
    for layer in model.layers:
        kind = kinds[layer.name]
        if kind in TRANSPARENT or not np.issubdtype(np.dtype(layer.output.dtype), np.floating):
            continue
        after = readers.get(layer.name, [])
        if after and all(kinds.get(name) in FOLDED for name in after):
            continue
        points.append(layer.name)
    return points


def calibrate_keras(model, data: CalibrationData, recipe: QuantRecipe, model_sha256: str,
                    on_batch=None) -> RangeTable:
    import keras

    points = quantization_points(model)
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in points])
    names = [tensor.name for tensor in model.inputs]
    stats = {name: TensorHistogram(recipe.num_bins) for name in points}
    for feeds in data.batches():
        args = [feeds[name] for name in names]
        produced = probe(keras_inputs(probe, args), training=False)
        produced = produced if isinstance(produced, (list, tuple)) else [produced]
        for name, value in zip(points, produced, strict=True):
            stats[name].update(np.asarray(value, dtype=np.float32))
        if on_batch:
            on_batch(len(args[0]))
    skipped = unquantizable(stats)
    usable = {name: hist for name, hist in stats.items() if name not in skipped}
    return RangeTable(recipe.method, compute_ranges(usable, recipe.method, recipe.percentile), model_sha256,
                      data.fingerprint, skipped)


@functools.cache
def _fake_quant_layer():
    import keras
    import tensorflow as tf

    class FakeQuant(keras.layers.Layer):
        def __init__(self, lo: float, hi: float, **kwargs):
            super().__init__(**kwargs)
            self.lo, self.hi = float(min(lo, 0.0)), float(max(hi, 0.0))

        def call(self, inputs):
            return tf.quantization.fake_quant_with_min_max_args(inputs, min=self.lo, max=self.hi, num_bits=8)

    return FakeQuant


def with_fake_quant(model, ranges: dict[str, tuple[float, float]], fake_quant=None):
    """A copy of the model, same weights, with a fake-quant layer (`fake_quant(lo, hi)`, fixed ranges by
    default) after each calibrated layer."""
    import keras

    fake_quant = fake_quant or _fake_quant_layer()

    def call(layer, *args, **kwargs):
        output = layer(*args, **kwargs)
        if layer.name in ranges:
            return fake_quant(*ranges[layer.name], name=f"{layer.name}_fake_quant")(output)
        return output

    clone = keras.models.clone_model(model, call_function=call)
    originals = {layer.name for layer in model.layers}
    for layer in clone.layers:
        if layer.name in originals:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return clone


def representative(data: CalibrationData, names: Iterable[str]):
    names = list(names)

    def batches():
        for feeds in data.batches():
            for row in range(len(feeds[names[0]])):
                yield [feeds[name][row:row + 1] for name in names]

    return batches
