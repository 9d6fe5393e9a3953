"""SmoothQuant-style scale migration (Xiao et al. 2023): a transformer's normalized activations carry a few
outlier channels that stretch the INT8 grid for all the others. Channel j of the activation is divided by
s_j = max|X_j|^a / max|W_j|^(1-a) and row j of every weight reading it multiplied by s_j. The division is
folded into the normalization's own scale and shift, so no op is added and FP32 outputs stay equal. Only
activations whose every reader is a MatMul/Gemm with a constant weight qualify."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..calibration.tensor_stream import stream_tensors
from ..data.calibration_data import CalibrationData
from ..graphs.rewrite_tools import readers_by_tensor
from .layers import shared

MIGRATION = 0.5  # a: how much of the outlier moves into the weights
MIN_SCALE = 1e-5


@dataclass(frozen=True)
class Site:
    activation: str
    folds: tuple[str, ...]  # 1-D initializers that scale (and shift) the activation's channels
    weights: tuple[tuple[str, bool], ...]  # (initializer, stored [out, in]) of every reader


def smoothing_sites(model: onnx.ModelProto) -> list[Site]:
    inits = {init.name: init for init in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    readers = readers_by_tensor(model)
    outputs = {output.name for output in model.graph.output}
    sites = []
    for tensor, nodes in readers.items():
        weights = [_weight(node, tensor, inits) for node in nodes]
        if tensor in outputs or tensor not in producer or not all(weights):
            continue
        folds = _folds(producer[tensor], producer, readers, inits)
        width = {inits[name].dims[-1 if stored_out_in else 0] for name, stored_out_in in weights}
        alone = all(not shared(model, name) for name in (*folds, *(name for name, _ in weights)))
        if folds and alone and width == {inits[folds[0]].dims[0]}:
            sites.append(Site(tensor, folds, tuple(weights)))
    return sites


def _weight(node: onnx.NodeProto, tensor: str, inits: dict) -> tuple[str, bool] | None:
    if node.op_type not in ("MatMul", "Gemm") or node.input[0] != tensor or len(node.input) < 2:
        return None
    init = inits.get(node.input[1])
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if init is None or len(init.dims) != 2 or attrs.get("transA"):
        return None
    return node.input[1], bool(attrs.get("transB", 0))


def _folds(node: onnx.NodeProto, producer: dict, readers: dict, inits: dict) -> tuple[str, ...]:
    """LayerNormalization's scale and bias, or a decomposed one's trailing Mul(gamma) -> Add(beta)."""
    def vector(name: str) -> bool:
        return name in inits and len(inits[name].dims) == 1 and inits[name].data_type == onnx.TensorProto.FLOAT

    if node.op_type == "LayerNormalization":
        return tuple(name for name in node.input[1:3] if name) if all(
            vector(name) for name in node.input[1:3] if name) else ()
    if node.op_type == "Add":
        beta = next((name for name in node.input if vector(name)), None)
        other = next((name for name in node.input if name != beta), None)
        scaling = producer.get(other)
        if beta and scaling is not None and scaling.op_type == "Mul" and len(readers[other]) == 1:
            gamma = next((name for name in scaling.input if vector(name)), None)
            if gamma and inits[gamma].dims == inits[beta].dims:
                return gamma, beta
    return ()


def channel_maxima(model: onnx.ModelProto, sites: list[Site], data: CalibrationData) -> dict[str, np.ndarray]:
    maxima: dict[str, np.ndarray] = {}

    def fold(values: dict[str, np.ndarray], _feeds) -> None:
        for name, value in values.items():
            peak = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0).astype(np.float64)
            maxima[name] = np.maximum(maxima[name], peak) if name in maxima else peak

    stream_tensors(model, [site.activation for site in sites], data, fold,
                   "the model while measuring activation channels")
    return maxima


def smooth(model: onnx.ModelProto, data: CalibrationData) -> int:
    """Migrates scale at every site in place; returns how many activations were smoothed."""
    sites = smoothing_sites(model)
    if not sites:
        return 0
    maxima = channel_maxima(model, sites, data)
    inits = {init.name: init for init in model.graph.initializer}
    for site in sites:
        weights = [(numpy_helper.to_array(inits[name]).astype(np.float64), out_in) for name, out_in in site.weights]
        rows = np.max([np.abs(w.T if out_in else w).max(axis=1) for w, out_in in weights], axis=0)
        scale = np.where((maxima[site.activation] > 0) & (rows > 0),
                         maxima[site.activation] ** MIGRATION / np.maximum(rows, 1e-12) ** (1 - MIGRATION), 1.0)
        scale = np.maximum(scale, MIN_SCALE)
        for name in site.folds:
            _put(inits[name], numpy_helper.to_array(inits[name]) / scale)
        for (name, out_in), (weight, _) in zip(site.weights, weights, strict=True):
            _put(inits[name], weight * (scale.reshape(1, -1) if out_in else scale.reshape(-1, 1)))
    return len(sites)


def _put(init: onnx.TensorProto, value: np.ndarray) -> None:
    init.CopyFrom(numpy_helper.from_array(value.astype(np.float32), init.name))
