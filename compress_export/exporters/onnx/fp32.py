"""The FP32 ONNX export of a loaded model: every target that reads ONNX and every compression step starts from
it. Nodes get stable names (node lists and exclusions work by name) and the file must pass onnx's checker."""

from __future__ import annotations

from pathlib import Path

import onnx

from ...errors import ExportError
from ...graphs.onnx_io import save


def export_fp32(model, path: Path, example: dict) -> None:
    model.export_onnx(path, example)
    graph = onnx.load(str(path))
    _name_unnamed_nodes(graph)
    save(graph, path)
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported ONNX model is invalid: {str(exc).splitlines()[0]}") from None


def _name_unnamed_nodes(graph: onnx.ModelProto) -> None:
    """Node lists and exclusions work by name; give every node a stable one."""
    taken = {node.name for node in graph.graph.node if node.name}
    for index, node in enumerate(graph.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)
