"""What graph rewrites read and change: producers, readers, constant values, fresh names, dead tensors."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def readers_by_tensor(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Every main-graph use of each tensor (a node reading one tensor twice is listed twice)."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    return readers


class Graph:
    """Indexes of one ONNX graph (the main graph; subgraphs are left alone), refreshed after each change."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.refresh()

    def refresh(self) -> None:
        graph = self.model.graph
        self.initializers = {init.name: init for init in graph.initializer}
        self.producers = {output: node for node in graph.node for output in node.output}
        self.reader_lists: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in dict.fromkeys(node.input):
                self.reader_lists.setdefault(name, []).append(node)
        self.outputs = {output.name for output in graph.output}
        self.subgraph_reads = _subgraph_reads(graph)

    def producer(self, name: str) -> onnx.NodeProto | None:
        return self.producers.get(name)

    def readers(self, name: str) -> list[onnx.NodeProto]:
        """The main-graph nodes reading `name`; a tensor a subgraph reads has a reader nobody may remove, so it
        counts as read twice."""
        readers = self.reader_lists.get(name, [])
        return readers + [None] if name in self.subgraph_reads else readers

    def is_output(self, name: str) -> bool:
        return name in self.outputs

    def constant(self, name: str) -> np.ndarray | None:
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producers.get(name)
        if node is not None and node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    return numpy_helper.to_array(attribute.t)
        return None

    def scalar(self, name: str) -> float | None:
        """A constant of one value that broadcasts nothing (rank 0 or 1)."""
        value = self.constant(name)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 and value.ndim <= 1 else None

    def fresh_name(self, base: str) -> str:
        taken = set(self.initializers) | set(self.producers) | {value.name for value in self.model.graph.input}
        name, index = base, 1
        while name in taken:
            index += 1
            name = f"{base}.{index}"
        return name

    def remove(self, node: onnx.NodeProto) -> None:
        self.model.graph.node.remove(node)

    def drop_unused(self) -> None:
        """Initializers, Constant nodes and shape annotations nothing reads any more."""
        self.refresh()
        graph = self.model.graph
        read = set(self.reader_lists) | self.outputs | self.subgraph_reads
        for node in [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in read]:
            graph.node.remove(node)
        for init in [i for i in graph.initializer if i.name not in read]:
            graph.initializer.remove(init)
        self.refresh()
        live = set(self.producers) | {value.name for value in graph.input}
        for info in [v for v in graph.value_info if v.name not in live]:
            graph.value_info.remove(info)


def _subgraph_reads(graph: onnx.GraphProto) -> set[str]:
    """Names the subgraphs of If/Loop/Scan nodes read from the enclosing graph."""
    names: set[str] = set()
    for node in graph.node:
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                names.update(name for inner in sub.node for name in inner.input)
                names |= _subgraph_reads(sub)
    return names
