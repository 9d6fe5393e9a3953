"""Weight-only INT8 for embedding tables. A word-embedding table is most of a small encoder's file (MiniLM:
30522 x 384 floats, 47 MB of 90) and feeds no integer kernel, so the QDQ quantizer leaves it float. Each row
is stored as symmetric INT8 with its own scale; the graph gathers the INT8 rows and their scales and
multiplies, so only the rows a batch reads are widened, and the table shrinks 4x. Tied tables (also read
by a MatMul) are left alone."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ...graphs.rewrite_tools import readers_by_tensor

MIN_ELEMENTS = 1 << 16  # smaller tables are not worth three extra nodes


def quantize_embedding_tables(model: onnx.ModelProto) -> list[str]:
    """Rewrites `model` in place; returns a note per table."""
    constants = {init.name: init for init in model.graph.initializer}
    readers = readers_by_tensor(model)
    notes = []
    for name, init in list(constants.items()):
        users = readers.get(name, [])
        if not users or any(not _row_gather(node, name) for node in users) or len(init.dims) != 2:
            continue
        if init.data_type != onnx.TensorProto.FLOAT or int(np.prod(init.dims)) < MIN_ELEMENTS:
            continue
        table = numpy_helper.to_array(init)
        scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
        scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        quantized = np.clip(np.round(table / scale), -127, 127).astype(np.int8)
        model.graph.initializer.remove(init)
        model.graph.initializer.extend([numpy_helper.from_array(quantized, f"{name}_int8"),
                                        numpy_helper.from_array(scale, f"{name}_row_scale")])
        for node in users:
            _rewire(model, node, name)
        notes.append(f"embedding table {name} ({table.shape[0]} x {table.shape[1]}) stored as INT8 with one scale "
                     f"per row ({table.nbytes / 1e6:.1f} MB -> {(quantized.nbytes + scale.nbytes) / 1e6:.1f} MB)")
    return notes


def _row_gather(node: onnx.NodeProto, table: str) -> bool:
    axis = next((attr.i for attr in node.attribute if attr.name == "axis"), 0)
    return node.op_type == "Gather" and node.input[0] == table and axis == 0


def _rewire(model: onnx.ModelProto, gather: onnx.NodeProto, table: str) -> None:
    """Gather(table, ids) -> Cast(Gather(table_int8, ids)) * Gather(row_scale, ids), same output name."""
    prefix, ids, out = f"{gather.name or table}_int8", gather.input[1], gather.output[0]
    nodes = [
        helper.make_node("Gather", [f"{table}_int8", ids], [f"{prefix}_rows"], name=f"{prefix}_gather", axis=0),
        helper.make_node("Cast", [f"{prefix}_rows"], [f"{prefix}_float"], name=f"{prefix}_cast",
                         to=onnx.TensorProto.FLOAT),
        helper.make_node("Gather", [f"{table}_row_scale", ids], [f"{prefix}_scales"], name=f"{prefix}_scales",
                         axis=0),
        helper.make_node("Mul", [f"{prefix}_float", f"{prefix}_scales"], [out], name=f"{prefix}_mul"),
    ]
    position = list(model.graph.node).index(gather)
    model.graph.node.remove(gather)
    for offset, node in enumerate(nodes):
        model.graph.node.insert(position + offset, node)
