"""Which nodes of an ONNX graph are quantized, and which activation tensors need ranges."""

from __future__ import annotations

import re
from collections.abc import Iterable

import onnx

from .errors import UsageError
from .specs import QuantRecipe

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
    wanted = set(op_types(recipe))
    return [
        node
        for node in model.graph.node
        if node.op_type in wanted and not (pattern and pattern.search(node.name))
    ]


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


def with_inferred_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is best effort: types default to float
        return model
