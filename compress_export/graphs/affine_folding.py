"""Constant scales and shifts folded into the convolution beside them: `Conv -> Mul(c) -> Add(d)` becomes one Conv
with scaled weights and a shifted bias, and `Mul(c) -> Add(d) -> Conv` (no padding) the same from the other side.
Published mobile networks keep such affine steps as separate elementwise nodes (PP-LCNetV3's learnable affine
blocks, a Paddle export's unfused scales); in an INT8 graph each one is a float pass between two integer kernels."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from .rewrite_tools import Graph

AFFINE_OPS = ("Mul", "Add")


def fold_affine(model: onnx.ModelProto) -> int:
    """Fold in place; returns how many Mul/Add nodes were folded away."""
    graph = Graph(model)
    folded = 0
    changed = True
    while changed:
        changed = False
        for node in list(model.graph.node):
            if node.op_type in AFFINE_OPS and (_into_producer(graph, node) or _into_consumer(graph, node)):
                folded += 1
                changed = True
                graph.refresh()
    graph.drop_unused()
    return folded


def _affine(graph: Graph, node: onnx.NodeProto) -> tuple[str, np.ndarray] | None:
    """(the varying input, the constant) of a Mul/Add with one constant input."""
    if len(node.input) != 2:
        return None
    for varying, constant in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
        value = graph.constant(constant)
        if value is not None and graph.constant(varying) is None and value.dtype == np.float32:
            return varying, value
    return None


def _per_channel(value: np.ndarray, channels: int, rank: int) -> np.ndarray | None:
    """The constant as one value per channel of an NC... tensor of `rank`, or None when it varies along another axis
    or would broadcast the tensor to another shape."""
    if value.ndim > rank:
        return None
    shape = (1,) * (rank - value.ndim) + value.shape
    if any(size != 1 for axis, size in enumerate(shape) if axis != 1) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(value.reshape(-1), (channels,)).astype(np.float32)


def _conv(graph: Graph, node: onnx.NodeProto | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The weights and bias (zeros where it has none) of a Conv whose weights are constants."""
    if node is None or node.op_type != "Conv" or len(node.input) < 2:
        return None
    weights = graph.constant(node.input[1])
    bias = graph.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(
        weights.shape[0] if weights is not None else 0, np.float32)
    if weights is None or bias is None or weights.dtype != np.float32:
        return None
    return weights, bias


def _into_producer(graph: Graph, node: onnx.NodeProto) -> bool:
    """Conv -> Mul/Add(c): c per output channel scales the weights and bias (Mul) or shifts the bias (Add)."""
    affine = _affine(graph, node)
    if affine is None:
        return False
    varying, value = affine
    conv = graph.producer(varying)
    params = _conv(graph, conv)
    if params is None or graph.readers(varying) != [node] or graph.is_output(varying):
        return False
    weights, bias = params
    scale = _per_channel(value, weights.shape[0], weights.ndim)
    if scale is None:
        return False
    if node.op_type == "Mul":
        weights, bias = weights * scale.reshape((-1,) + (1,) * (weights.ndim - 1)), bias * scale
    else:
        bias = bias + scale
    _set_params(graph, conv, weights, bias)
    conv.output[0] = node.output[0]  # the Conv now writes what the Mul/Add wrote
    graph.remove(node)
    return True


def _into_consumer(graph: Graph, node: onnx.NodeProto) -> bool:
    """Mul/Add(c) -> Conv without padding or groups: c per input channel scales the weights (Mul) or shifts the
    bias by the weights' sums (Add). With padding the border would read zeros the affine step never made."""
    affine = _affine(graph, node)
    if affine is None or graph.is_output(node.output[0]):
        return False
    varying, value = affine
    readers = graph.readers(node.output[0])
    if len(readers) != 1 or readers[0].input[0] != node.output[0]:
        return False
    conv = readers[0]
    params = _conv(graph, conv)
    if params is None or not _unpadded(conv) or _attribute(conv, "group", 1) != 1:
        return False
    weights, bias = params
    shift = _per_channel(value, weights.shape[1], weights.ndim)
    if shift is None:
        return False
    per_input = shift.reshape((1, -1) + (1,) * (weights.ndim - 2))
    if node.op_type == "Mul":
        weights = weights * per_input
    else:
        bias = bias + (weights * per_input).sum(axis=tuple(range(1, weights.ndim)))
    _set_params(graph, conv, weights, bias)
    conv.input[0] = varying
    graph.remove(node)
    return True


def _unpadded(conv: onnx.NodeProto) -> bool:
    pads = _attribute(conv, "pads", [])
    auto_pad = _attribute(conv, "auto_pad", b"NOTSET")
    return not any(pads) and auto_pad in (b"NOTSET", b"VALID")


def _attribute(node: onnx.NodeProto, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _set_params(graph: Graph, conv: onnx.NodeProto, weights: np.ndarray, bias: np.ndarray) -> None:
    """New initializers for this Conv alone (the old ones may be shared), named after it."""
    names = graph.fresh_name(f"{conv.name or conv.output[0]}.weight"), graph.fresh_name(
        f"{conv.name or conv.output[0]}.bias")
    for name, value in zip(names, (weights, bias), strict=True):
        graph.model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
    del conv.input[1:]
    conv.input.extend(names)
