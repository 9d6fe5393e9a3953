"""Cross-layer equalization (Nagel et al. 2019): where a Conv feeds another Conv directly or through a
positively homogeneous activation (Relu, LeakyRelu, PRelu: f(x/s) = f(x)/s for s > 0), output channel i of
the first is divided by s_i and input channel i of the second multiplied by it. FP32 outputs stay equal; the
per-channel weight ranges meet at sqrt(r1 * r2), so channels that were tiny next to their neighbours get
more of the INT8 grid. Activation ranges change: the ranges are calibrated again on the equalized graph."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..graphs.rewrite_tools import readers_by_tensor
from .layers import conv_groups, shared

HOMOGENEOUS = ("Relu", "LeakyRelu", "PRelu")
ROUNDS = 4  # chains of pairs settle within a few passes
SCALE_LIMIT = 1e4


@dataclass(frozen=True)
class Pair:
    first: onnx.NodeProto
    second: onnx.NodeProto


def conv_pairs(model: onnx.ModelProto) -> list[Pair]:
    inits = {init.name: init for init in model.graph.initializer}
    readers = readers_by_tensor(model)
    outputs = {output.name for output in model.graph.output}

    def only_reader(tensor: str) -> onnx.NodeProto | None:
        found = readers.get(tensor, [])
        return found[0] if len(found) == 1 and tensor not in outputs else None

    def plain_conv(node: onnx.NodeProto | None) -> bool:
        return (node is not None and node.op_type == "Conv" and node.input[1] in inits
                and len(inits[node.input[1]].dims) == 4 and not shared(model, node.input[1])
                and (len(node.input) < 3 or not node.input[2]
                     or node.input[2] in inits and not shared(model, node.input[2])))

    pairs = []
    for node in model.graph.node:
        if not plain_conv(node):
            continue
        tensor = node.output[0]
        step = only_reader(tensor)
        if step is not None and step.op_type in HOMOGENEOUS and step.input[0] == tensor:
            tensor = step.output[0]
            step = only_reader(tensor)
        if plain_conv(step) and step.input[0] == tensor:
            pairs.append(Pair(node, step))
    return pairs


def equalize(model: onnx.ModelProto) -> int:
    """Equalizes every pair in place; returns how many pairs there were."""
    pairs = conv_pairs(model)
    inits = {init.name: init for init in model.graph.initializer}
    values = {name: numpy_helper.to_array(init).astype(np.float64) for name, init in inits.items()}
    for _ in range(ROUNDS):
        for pair in pairs:
            _equalize_pair(pair, values)
    for pair in pairs:
        for node in (pair.first, pair.second):
            for name in node.input[1:3]:
                if name:
                    inits[name].CopyFrom(numpy_helper.from_array(values[name].astype(np.float32), name))
    return len(pairs)


def _equalize_pair(pair: Pair, values: dict[str, np.ndarray]) -> None:
    first, second = values[pair.first.input[1]], values[pair.second.input[1]]
    channels = first.shape[0]
    groups = conv_groups(pair.second)
    per_group_in = second.shape[1]
    per_group_out = second.shape[0] // groups
    if per_group_in * groups != channels:
        return
    r1 = np.abs(first.reshape(channels, -1)).max(axis=1)
    r2 = np.array([np.abs(second[(i // per_group_in) * per_group_out:(i // per_group_in + 1) * per_group_out,
                                 i % per_group_in]).max() for i in range(channels)])
    usable = (r1 > 0) & (r2 > 0)
    scale = np.ones(channels)
    scale[usable] = np.clip(np.sqrt(r1[usable] / r2[usable]), 1 / SCALE_LIMIT, SCALE_LIMIT)
    first /= scale.reshape(-1, 1, 1, 1)
    if len(pair.first.input) > 2 and pair.first.input[2]:
        values[pair.first.input[2]] /= scale
    for i in range(channels):
        group = i // per_group_in
        second[group * per_group_out:(group + 1) * per_group_out, i % per_group_in] *= scale[i]
