"""Decomposed hard activations as the ops runtimes fuse: `Clip(x + 3, 0, 6) / 6` becomes HardSigmoid(x) and
`x * Clip(x + 3, 0, 6) / 6` becomes HardSwish(x) (opset 14; the graph is converted to it). Exporters of Paddle and
older PyTorch write the four-op form: four float passes over the tensor where one does. onnxruntime runs HardSwish as
HardSigmoid + Mul; OpenVINO fuses it into the Conv before it as a post-op, which it does not do for HardSigmoid + Mul
(the PP-OCRv4 detector in OpenVINO: 420 ms as shipped, 608 ms with HardSigmoid + Mul)."""

from __future__ import annotations

import onnx

from .rewrite_tools import Graph
from .selection import default_opset

SIXTH = 1.0 / 6.0
HARD_SWISH_OPSET = 14


def fuse_hard_activations(model: onnx.ModelProto) -> int:
    """Rewrite in place; returns how many activations were rewritten."""
    if default_opset(model, HARD_SWISH_OPSET) < HARD_SWISH_OPSET:
        model.CopyFrom(onnx.version_converter.convert_version(model, HARD_SWISH_OPSET))
    graph = Graph(model)
    fused = 0
    for clip in [node for node in model.graph.node if node.op_type == "Clip"]:
        if _rewrite(graph, clip):
            fused += 1
            graph.refresh()
    graph.drop_unused()
    return fused


def _rewrite(graph: Graph, clip: onnx.NodeProto) -> bool:
    add = graph.producer(clip.input[0])
    if clip not in graph.model.graph.node or not _clips_to(graph, clip, 0.0, 6.0) or add is None:
        return False
    x = _other_input(graph, add, "Add", 3.0)
    if x is None or graph.readers(add.output[0]) != [clip] or graph.is_output(add.output[0]):
        return False
    readers = graph.readers(clip.output[0])
    if len(readers) != 1 or graph.is_output(clip.output[0]):
        return False
    step = readers[0]
    if _scales_by_sixth(graph, step):  # Clip(x + 3, 0, 6) / 6: a hard sigmoid
        _replace(graph, [add, clip, step], [_hard_sigmoid(graph, x, step.output[0])])
        return True
    if step.op_type != "Mul" or _other(step, clip.output[0]) != x or graph.is_output(step.output[0]):
        return False
    after = graph.readers(step.output[0])
    if len(after) != 1 or not _scales_by_sixth(graph, after[0]):
        return False
    output = after[0].output[0]
    _replace(graph, [add, clip, step, after[0]], [onnx.helper.make_node("HardSwish", [x], [output],
                                                                        name=graph.fresh_name(f"{output}.op"))])
    return True


def _hard_sigmoid(graph: Graph, x: str, output: str) -> onnx.NodeProto:
    return onnx.helper.make_node("HardSigmoid", [x], [output], name=graph.fresh_name(f"{output}.op"), alpha=SIXTH,
                                 beta=0.5)


def _replace(graph: Graph, removed: list[onnx.NodeProto], added: list[onnx.NodeProto]) -> None:
    """The new nodes where the first removed one was, so the graph stays in topological order."""
    nodes = graph.model.graph.node
    at = min(list(nodes).index(node) for node in removed)
    for node in removed:
        graph.remove(node)
    for offset, node in enumerate(added):
        nodes.insert(at + offset, node)


def _clips_to(graph: Graph, clip: onnx.NodeProto, low: float, high: float) -> bool:
    bounds = {attribute.name: attribute.f for attribute in clip.attribute}  # opset < 11 keeps them as attributes
    if len(clip.input) > 1:
        bounds["min"] = graph.scalar(clip.input[1]) if clip.input[1] else None
    if len(clip.input) > 2:
        bounds["max"] = graph.scalar(clip.input[2]) if clip.input[2] else None
    return _near(bounds.get("min"), low) and _near(bounds.get("max"), high)


def _scales_by_sixth(graph: Graph, node: onnx.NodeProto) -> bool:
    if node.op_type == "Div" and len(node.input) == 2:
        return _near(graph.scalar(node.input[1]), 6.0)
    if node.op_type == "Mul":
        return any(_near(graph.scalar(name), SIXTH) for name in node.input)
    return False


def _other_input(graph: Graph, node: onnx.NodeProto, op: str, value: float) -> str | None:
    """The non-constant input of a binary `op` whose other input is the scalar `value`."""
    if node.op_type != op or len(node.input) != 2:
        return None
    for mine, other in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
        if _near(graph.scalar(other), value) and graph.constant(mine) is None:
            return mine
    return None


def _other(node: onnx.NodeProto, name: str) -> str | None:
    inputs = list(node.input)
    if len(inputs) != 2 or name not in inputs:
        return None
    return inputs[1] if inputs[0] == name else inputs[0]


def _near(value: float | None, expected: float) -> bool:
    return value is not None and abs(value - expected) <= 1e-6 * max(1.0, abs(expected))
