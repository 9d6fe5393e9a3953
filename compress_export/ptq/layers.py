"""The weight layers a PTQ step may change, and the INT8 grid onnxruntime's quantizer puts their weights on:
symmetric, -127..127, per output channel (Conv axis 0, Gemm axis 0 with transB else 1, MatMul axis 1) or per
tensor, the scale the largest magnitude over 127. A step that keeps each channel's largest magnitude keeps the
grid, so weights snapped to it come back from the quantizer as the same integers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

QMAX = 127


@dataclass(frozen=True)
class WeightLayer:
    node: str
    op_type: str
    input: str  # the activation it reads
    output: str
    weight: str  # initializer name
    transposed: bool  # Gemm transB: the weight is stored [out, in]

    def as_matrix(self, weight: np.ndarray) -> np.ndarray:
        """[out, in]: Conv [O, C/g, kh, kw] flattened per output channel; Gemm/MatMul by their layout."""
        if self.op_type == "Conv":
            return weight.reshape(weight.shape[0], -1)
        return weight if self.transposed else weight.T

    def from_matrix(self, matrix: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if self.op_type == "Conv":
            return matrix.reshape(shape)
        return matrix if self.transposed else matrix.T


def weight_layers(model: onnx.ModelProto, nodes: set[str] | None = None) -> list[WeightLayer]:
    """Top-level Conv (2-D), Gemm and MatMul nodes with a constant float weight, in graph order."""
    inits = {init.name: init for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if nodes is not None and node.name not in nodes or node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        weight = inits.get(node.input[1]) if len(node.input) > 1 else None
        if weight is None or weight.data_type != onnx.TensorProto.FLOAT:
            continue
        rank = len(weight.dims)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv" and rank != 4 or node.op_type != "Conv" and rank != 2 or attrs.get("transA"):
            continue
        found.append(WeightLayer(node.name, node.op_type, node.input[0], node.output[0], node.input[1],
                                 bool(attrs.get("transB", 0))))
    return found


def grid_scale(matrix: np.ndarray, per_channel: bool) -> np.ndarray:
    """[out, 1] scales of a [out, in] weight matrix (one shared value per tensor when not per channel)."""
    magnitude = np.abs(matrix).max(axis=1, keepdims=True) if per_channel else np.full(
        (matrix.shape[0], 1), np.abs(matrix).max())
    return np.where(magnitude > 0, magnitude / QMAX, 1.0).astype(np.float64)


def round_to_grid(matrix: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Nearest rounding, as the quantizer rounds (halves to even)."""
    return np.clip(np.round(matrix / scale), -QMAX, QMAX)


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def replace_initializers(model: onnx.ModelProto, values: dict[str, np.ndarray]) -> None:
    for index, init in enumerate(model.graph.initializer):
        if init.name in values:
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(
                values[init.name].astype(numpy_helper.to_array(init).dtype), init.name))


def shared(model: onnx.ModelProto, name: str) -> bool:
    """Read by more than one node (or a subgraph): changing it for one layer would change the others."""
    readers = sum(name in node.input for node in model.graph.node)
    inside = any(name in sub.input for node in model.graph.node for attr in node.attribute if attr.HasField("g")
                 for sub in attr.g.node)
    return readers > 1 or inside


def conv_groups(node: onnx.NodeProto) -> int:
    return next((int(onnx.helper.get_attribute_value(a)) for a in node.attribute if a.name == "group"), 1)
