"""Runs a Keras model: the reference side of parity for Keras models."""

from __future__ import annotations

import numpy as np

from .base import Runner


def keras_inputs(model, arrays: list):
    """The inputs in the structure the functional model was built with (one tensor, or a list)."""
    structure = getattr(model, "_inputs_struct", None)
    return list(arrays) if isinstance(structure, (list, tuple)) or len(arrays) > 1 else arrays[0]


def output_names(count: int) -> list[str]:
    """TFLite's names for a Keras model's outputs, used on both sides of the parity check."""
    return [f"output_{index}" for index in range(count)]


class KerasRunner(Runner):
    name = "keras"

    def __init__(self, model):
        super().__init__()
        self.model = model
        self._inputs = [tensor.name for tensor in model.inputs]
        self._outputs = output_names(len(model.outputs))

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.model(keras_inputs(self.model, [feeds[name] for name in self._inputs]), training=False)
        values = result if isinstance(result, (list, tuple)) else [result]
        return {name: np.asarray(value) for name, value in zip(self._outputs, values, strict=True)}
