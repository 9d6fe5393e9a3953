"""Where each input keeps its samples. Inside the tool every array is sample-major (samples on axis 0),
so batching, subsampling and per-sample metrics slice one axis. Some models keep the batch elsewhere
(a recurrent state `[layers, batch, hidden]`) or take a scalar (a sample rate); their arrays are turned
sample-major when read and back into the model's layout where a session runs them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import UsageError


def batch_axis(shape: Sequence) -> int | None:
    """The axis that holds the samples: None for a scalar; axis 0 when it is dynamic, fixed at 1, or when no
    axis is dynamic; else the first dynamic axis (`[2, batch, 128]`)."""
    if not shape:
        return None
    dynamic = [axis for axis, dim in enumerate(shape) if not isinstance(dim, int) or dim < 0]
    if not dynamic or dynamic[0] == 0 or shape[0] == 1:
        return 0
    return dynamic[0]


def sample_major(array: np.ndarray, shape: Sequence) -> np.ndarray:
    """A data file's array (in the model's layout) with its samples on axis 0; a scalar stays as it is."""
    axis = batch_axis(shape)
    if axis is None or axis == 0 or array.ndim != len(shape):
        return array
    return np.moveaxis(array, axis, 0)


def model_feeds(feeds: dict[str, np.ndarray], inputs) -> tuple[dict[str, np.ndarray], dict[tuple, int]]:
    """Sample-major feeds in the layout of a session's inputs (onnxruntime NodeArgs), and the model-layout
    shapes that were moved, by shape, with their batch axis (outputs shaped alike move back)."""
    by_name = {value.name: list(value.shape) for value in inputs}
    converted, moved = {}, {}
    for name, array in feeds.items():
        shape = by_name.get(name)
        if shape is None:
            converted[name] = array
            continue
        axis = batch_axis(shape)
        if axis is None and np.ndim(array) == 1:
            if array.size and not np.all(array == array[0]):
                raise UsageError(f"input {name!r} is one value per batch, and this batch holds different values")
            converted[name] = np.asarray(array[0])
        elif axis and np.ndim(array) == len(shape):
            converted[name] = np.moveaxis(array, 0, axis)
            moved[converted[name].shape] = axis
        else:
            converted[name] = array
    return converted, moved


def sample_major_outputs(values: list, moved: dict[tuple, int]) -> list:
    """Outputs shaped like a moved input (a state going out as it came in) return to sample-major."""
    if not moved:
        return values
    return [np.moveaxis(value, moved[value.shape], 0) if getattr(value, "shape", None) in moved else value
            for value in values]


def fixed_batch(specs) -> int | None:
    """The batch size a model was exported with, when its inputs fix one (the sample axis an integer on
    every input that has one)."""
    axes = [(spec, batch_axis(spec.shape)) for spec in specs]
    sizes = {spec.shape[axis] for spec, axis in axes if axis is not None}
    return sizes.pop() if len(sizes) == 1 and all(isinstance(size, int) and size > 0 for size in sizes) else None
