"""Which nodes of an ONNX graph are quantized, and which activation tensors need ranges."""

from __future__ import annotations

import re
from collections.abc import Iterable

import onnx

from ..errors import UsageError
from ..specs import QuantRecipe

COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# Activations onnxruntime folds into the preceding quantized op when they are in the op set.
FUSED_ACTIVATIONS = ("Relu", "Clip")
DEFAULT_OPS = COMPUTE_OPS + FUSED_ACTIVATIONS
_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}


def op_types(recipe: QuantRecipe) -> list[str]:
    types = list(recipe.include_ops) if recipe.include_ops else list(DEFAULT_OPS)
    return [op for op in types if op not in set(recipe.exclude_ops)]


def select_nodes(model: onnx.ModelProto, recipe: QuantRecipe) -> list[onnx.NodeProto]:
    try:
        pattern = re.compile(recipe.exclude_nodes) if recipe.exclude_nodes else None
    except re.error as exc:
        raise UsageError(f"--exclude-nodes: bad regular expression ({exc})") from None
    wanted, level_path = set(op_types(recipe)), level_path_nodes(model)
    return [
        node
        for node in model.graph.node
        if node.op_type in wanted and not (pattern and pattern.search(node.name)) and node.name not in level_path
    ]


def scalar_inputs(model: onnx.ModelProto) -> list[str]:
    """Graph inputs holding one value per sample ([N], [N, 1] or a scalar): a timestep, a noise level, a class id,
    a conditioning number."""
    found, weights = [], {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name in weights:
            continue
        dims = value.type.tensor_type.shape.dim
        if len(dims) <= 1 or (len(dims) == 2 and dims[1].dim_value == 1):
            found.append(value.name)
    return found


def level_path_nodes(model: onnx.ModelProto) -> set[str]:
    """Nodes computed from per-sample scalar inputs (and weights) alone, in a graph that also has a larger input: a
    denoiser's noise-level and condition embedding. They stay float: one range cannot hold a sigma of 80 and one of
    0.002, and they cost next to nothing beside the network they condition."""
    scalars, fixed = set(scalar_inputs(model)), {init.name for init in model.graph.initializer}
    if not scalars or not {value.name for value in model.graph.input} - scalars - fixed:
        return set()
    # fixed: weights, and what shapes and weights alone make
    level, nodes = set(scalars), set()
    for node in model.graph.node:  # graph order is topological
        inputs = [name for name in node.input if name]
        if node.op_type in ("Shape", "Size") or all(name in fixed for name in inputs):
            fixed.update(node.output)
        elif all(name in fixed or name in level for name in inputs):
            level.update(node.output)
            nodes.add(node.name)
    return nodes


def float_activations(model: onnx.ModelProto, nodes: Iterable[onnx.NodeProto]) -> list[str]:
    """Float inputs and outputs of `nodes` that are computed at run time (not weights)."""
    constants = {init.name for init in model.graph.initializer}
    constants |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    types = {
        info.name: info.type.tensor_type.elem_type
        for info in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)
    }
    names: dict[str, None] = {}
    for node in nodes:
        for name in list(node.input) + list(node.output):
            if name and name not in constants and types.get(name, onnx.TensorProto.FLOAT) in _FLOAT_TYPES:
                names[name] = None
    return list(names)


def nodes_touching(model: onnx.ModelProto, tensors: Iterable[str]) -> list[str]:
    wanted = set(tensors)
    return [node.name for node in model.graph.node if wanted & (set(node.input) | set(node.output))]


def default_opset(model: onnx.ModelProto, missing: int = 0) -> int:
    """The model's ai.onnx opset version (`missing` when it imports none)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), missing)


def input_casts(model: onnx.ModelProto) -> dict[str, str]:
    """FP16 Cast outputs -> the float tensors they narrow. An FP16 graph quantizes the cast of an FP32 graph input
    (or of a layer kept FP32): its QuantizeLinear still stands for the float graph's tensor of that name."""
    cast_to_fp16 = [node for node in model.graph.node if node.op_type == "Cast"
                    and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT16 for a in node.attribute)]
    return {node.output[0]: node.input[0] for node in cast_to_fp16}


def with_inferred_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is best effort: types default to float
        return model


def names_read(graph: onnx.GraphProto) -> set[str]:
    """Every tensor name the graph's nodes read, including those read by reference inside If/Loop/Scan
    bodies (a subgraph may read any tensor of the scopes around it), and the graph's outputs."""
    read = {output.name for output in graph.output}
    for node in graph.node:
        read.update(name for name in node.input if name)
        for attribute in node.attribute:
            for body in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                read |= names_read(body)
    return read


def outer_reads(node: onnx.NodeProto) -> set[str]:
    """Names a node's If/Loop/Scan bodies read from the scopes around them."""
    reads: set[str] = set()
    for attribute in node.attribute:
        for body in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
            local = {value.name for value in body.input} | {init.name for init in body.initializer}
            local |= {name for inner in body.node for name in inner.output}
            for inner in body.node:
                reads |= {name for name in inner.input if name and name not in local}
                reads |= outer_reads(inner) - local
            reads |= {value.name for value in body.output if value.name not in local}
    return reads


def sort_topologically(graph: onnx.GraphProto) -> bool:
    """Order the nodes so that each follows the producers of everything it reads, its subgraphs' outer reads
    included (onnxruntime's quantizer sorts on explicit inputs alone and can put an If before the tensor its
    branch reads). Stable: nodes already in order keep it. Returns whether anything moved."""
    import heapq

    nodes = list(graph.node)
    producer = {name: index for index, node in enumerate(nodes) for name in node.output}
    needs = [{producer[name] for name in (set(node.input) | outer_reads(node)) if name in producer} - {index}
             for index, node in enumerate(nodes)]
    waiting = [len(need) for need in needs]
    readers: dict[int, list[int]] = {}
    for index, need in enumerate(needs):
        for other in need:
            readers.setdefault(other, []).append(index)
    ready = [index for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:  # Kahn's algorithm, lowest original index first: stable
        index = heapq.heappop(ready)
        order.append(index)
        for reader in readers.get(index, []):
            waiting[reader] -= 1
            if waiting[reader] == 0:
                heapq.heappush(ready, reader)
    if len(order) < len(nodes):  # a cycle: leave the rest as it was
        placed = set(order)
        order += [index for index in range(len(nodes)) if index not in placed]
    if order == list(range(len(nodes))):
        return False
    sorted_nodes = [nodes[index] for index in order]
    del graph.node[:]
    graph.node.extend(sorted_nodes)
    return True


def level_path_note(model: onnx.ModelProto, kinds: Iterable[str]) -> list[str]:
    """The report's note on the compute nodes level_path_nodes keeps in float, if any."""
    wanted, path = set(kinds), level_path_nodes(model)
    kept = [node.name for node in model.graph.node if node.name in path and node.op_type in wanted]
    if not kept:
        return []
    return [f"kept in float: {len(kept)} node(s) computed from the per-sample scalar inputs "
            f"{', '.join(scalar_inputs(model))} alone (the noise-level and condition embedding; one range cannot "
            f"hold their span): {', '.join(kept[:4])}{', ...' if len(kept) > 4 else ''}"]
