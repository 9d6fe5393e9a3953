"""What the weight steps need of each layer's input, from one streaming pass over calibration data: per group
the mean input row (bias correction) and the second moment X^T X / n (learned rounding's Hessian)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from ..calibration.tensor_stream import stream_tensors
from ..data.calibration_data import CalibrationData
from .layers import WeightLayer, conv_groups
from .patches import conv_patches, matmul_rows

ROWS_PER_BATCH = 1024  # input rows a batch adds per layer: enough for the moments, bounded for large layers
SEED = 0


@dataclass
class LayerInputs:
    groups: int
    rows: int = 0
    sums: list = field(default_factory=list)  # per group [in]
    moments: list = field(default_factory=list)  # per group [in, in]

    def add(self, per_group: list[np.ndarray]) -> None:
        rows = [group.astype(np.float64) for group in per_group]
        if not self.sums:
            self.sums = [np.zeros(r.shape[1]) for r in rows]
            self.moments = [np.zeros((r.shape[1], r.shape[1])) for r in rows]
        for index, r in enumerate(rows):
            self.sums[index] += r.sum(axis=0)
            self.moments[index] += r.T @ r
        self.rows += len(rows[0])

    def mean(self, group: int) -> np.ndarray:
        return self.sums[group] / max(self.rows, 1)

    def hessian(self, group: int) -> np.ndarray:
        return self.moments[group] / max(self.rows, 1)


def layer_inputs(model: onnx.ModelProto, layers: list[WeightLayer], data: CalibrationData
                 ) -> dict[str, LayerInputs]:
    """By layer node name. Deterministic: positions are drawn from a fixed seed."""
    rng = np.random.default_rng(SEED)
    nodes = {node.name: node for node in model.graph.node}
    kernels = {init.name: tuple(init.dims) for init in model.graph.initializer}
    found = {layer.node: LayerInputs(conv_groups(nodes[layer.node])) for layer in layers}

    def fold(values: dict[str, np.ndarray], _feeds) -> None:
        for layer in layers:
            x = values[layer.input]
            if layer.op_type == "Conv":
                per_group = conv_patches(x, nodes[layer.node], kernels[layer.weight][2:], ROWS_PER_BATCH, rng)
            else:
                rows = matmul_rows(x)
                if len(rows) > ROWS_PER_BATCH:
                    rows = rows[np.sort(rng.choice(len(rows), ROWS_PER_BATCH, replace=False))]
                per_group = [rows]
            found[layer.node].add(per_group)

    stream_tensors(model, sorted({layer.input for layer in layers}), data, fold,
                   "the model while measuring layer inputs")
    return found
