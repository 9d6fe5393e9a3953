"""Rewrites of an exported QDQ graph that the budget search scores and ships: Q/DQ pairs bypassed (an activation
back to float), scales re-set (another range for a tensor, with the INT32 biases that depend on it), and what
each change costs in integer kernels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from ...graphs.selection import input_casts

FOLDED_ACTIVATIONS = ("Relu", "Clip")


def with_float_tensors(quantized: onnx.ModelProto, original: onnx.ModelProto, names: Iterable[str]
                       ) -> onnx.ModelProto:
    """A copy of the QDQ graph where the named activations skip their Quantize/DequantizeLinear pair.
    Where the quantizer folded a Relu or Clip into the pair's clamp, the activation is applied again,
    so the consumers see exactly the float tensor of the original graph."""
    names = set(names)
    model = onnx.ModelProto()
    model.CopyFrom(quantized)
    original_producer = {out: node for node in original.graph.node for out in node.output}
    nodes = list(model.graph.node)
    producer = {out: node for node in nodes for out in node.output}
    casts = input_casts(model)
    replacement: dict[str, str] = {}
    inserted: list[tuple[onnx.NodeProto | None, onnx.NodeProto]] = []
    for node in nodes:
        if node.op_type != "QuantizeLinear" or casts.get(node.input[0], node.input[0]) not in names:
            continue
        tensor = node.input[0]
        folded = original_producer.get(casts.get(tensor, tensor))
        made_by = producer.get(tensor)
        source = tensor
        if folded is not None and folded.op_type in FOLDED_ACTIVATIONS and (made_by is None or
                                                                           made_by.op_type != folded.op_type):
            restored = onnx.NodeProto()
            restored.CopyFrom(folded)
            restored.name = f"{folded.name}_restored"
            restored.input[0] = tensor
            del restored.output[:]
            source = f"{tensor}_float"
            restored.output.append(source)
            inserted.append((made_by, restored))
        for dequantize in nodes:
            if dequantize.op_type == "DequantizeLinear" and dequantize.input[0] == node.output[0]:
                replacement[dequantize.output[0]] = source
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            if name in replacement:
                node.input[index] = replacement[name]
    for after, restored in inserted:
        position = list(model.graph.node).index(after) + 1 if after is not None else 0
        model.graph.node.insert(position, restored)
        _bring_constants(model, original, restored)
    return model


def _bring_constants(model: onnx.ModelProto, original: onnx.ModelProto, node: onnx.NodeProto) -> None:
    """A restored Clip reads its bounds from the original graph (a Constant node or an initializer, as exporters
    write them); the quantizer dropped those with the Clip, so they come back as initializers."""
    available = {init.name for init in model.graph.initializer} | {i.name for i in model.graph.input}
    available |= {out for other in model.graph.node for out in other.output}
    initializers = {init.name: init for init in original.graph.initializer}
    constants = {out: other for other in original.graph.node if other.op_type == "Constant" for out in other.output}
    for name in node.input[1:]:
        if not name or name in available:
            continue
        if name in initializers:
            model.graph.initializer.append(initializers[name])
        elif name in constants:
            model.graph.initializer.append(numpy_helper.from_array(constant_value(constants[name]), name))
        else:
            raise ValueError(f"{node.name} reads {name}, which neither graph holds as a constant")
        available.add(name)


def constant_value(node: onnx.NodeProto) -> np.ndarray:
    """The value a Constant node holds, whichever of its attributes carries it."""
    value = onnx.helper.get_attribute_value(node.attribute[0])
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    kind = node.attribute[0].name
    return np.asarray(value, np.float32 if kind.startswith("value_float") else
                      np.int64 if kind.startswith("value_int") else None)


def searched_graph(quantized: onnx.ModelProto, original: onnx.ModelProto, float_tensors: Iterable[str],
                   ranges: Mapping[str, tuple[float, float]] | None) -> onnx.ModelProto:
    """The graph a search configuration describes, as it ships: the same rewrite the evaluator scored, with
    the bypassed pairs and their constants removed."""
    from .qdq import drop_unread_qdq

    model = with_float_tensors(with_tensor_ranges(quantized, ranges or {}), original, float_tensors)
    drop_unread_qdq(model)
    return model


def with_tensor_ranges(quantized: onnx.ModelProto, ranges: Mapping[str, tuple[float, float]]) -> onnx.ModelProto:
    """A copy of the QDQ graph whose named activations use the given ranges (scale and zero point as
    onnxruntime's quantizer derives them for the pair's integer type)."""
    if not ranges:
        return quantized
    model = onnx.ModelProto()
    model.CopyFrom(quantized)
    constants = {init.name: init for init in model.graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear":
            consumers.setdefault(node.input[0], []).append(node)
    casts = input_casts(model)
    rescaled: dict[str, float] = {}  # DequantizeLinear output -> its new scale
    for node in list(model.graph.node):
        if node.op_type != "QuantizeLinear" or len(node.input) < 3:
            continue
        tensor = casts.get(node.input[0], node.input[0])
        if tensor not in ranges:
            continue
        zero_type = onnx.helper.tensor_dtype_to_np_dtype(constants[node.input[2]].data_type)
        scale_type = onnx.helper.tensor_dtype_to_np_dtype(constants[node.input[1]].data_type)  # FP16 graphs
        scale, zero_point = scale_and_zero_point(*ranges[tensor], np.dtype(zero_type))
        prefix = f"{node.output[0]}_override"
        model.graph.initializer.extend([
            numpy_helper.from_array(np.asarray(scale, scale_type), f"{prefix}_scale"),
            numpy_helper.from_array(np.asarray(zero_point, zero_type), f"{prefix}_zero_point"),
        ])
        for user in [node, *consumers.get(node.output[0], [])]:
            user.input[1], user.input[2] = f"{prefix}_scale", f"{prefix}_zero_point"
        rescaled.update({dequantize.output[0]: scale for dequantize in consumers.get(node.output[0], [])})
    _rescale_biases(model, rescaled, constants)
    return model


def _rescale_biases(model: onnx.ModelProto, input_scales: Mapping[str, float], constants: Mapping) -> None:
    """An INT32 bias is quantized with input scale x weight scale; onnxruntime fuses DequantizeLinear-Conv-
    QuantizeLinear into QLinearConv only when that still holds, so a new input scale re-quantizes the
    biases of the nodes reading a re-scaled tensor (same float bias, new scale)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3 or node.input[0] not in input_scales:
            continue
        input_scale = input_scales[node.input[0]]
        weight, bias = producer.get(node.input[1]), producer.get(node.input[2])
        if weight is None or bias is None or weight.op_type != "DequantizeLinear" or bias.op_type != weight.op_type:
            continue
        if bias.input[0] not in constants or bias.input[1] not in constants or weight.input[1] not in constants:
            continue
        quantized = numpy_helper.to_array(constants[bias.input[0]])
        if quantized.dtype != np.int32:
            continue
        bias_scale = numpy_helper.to_array(constants[bias.input[1]])
        float_bias = quantized.astype(np.float64) * bias_scale
        scale = (input_scale * numpy_helper.to_array(constants[weight.input[1]]).astype(np.float64))
        scale = np.broadcast_to(scale, float_bias.shape).astype(bias_scale.dtype)
        safe = np.where(scale > 0, scale, 1.0)
        values = np.clip(np.round(float_bias / safe), -(2**31), 2**31 - 1).astype(np.int32)
        prefix = f"{bias.output[0]}_{node.name}_override"
        model.graph.initializer.extend([numpy_helper.from_array(values, f"{prefix}_quantized"),
                                        numpy_helper.from_array(scale, f"{prefix}_scale")])
        bias.input[0], bias.input[1] = f"{prefix}_quantized", f"{prefix}_scale"


def scale_and_zero_point(lo: float, hi: float, dtype: np.dtype) -> tuple[float, int]:
    info = np.iinfo(dtype)
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if info.min < 0:
        bound = max(-lo, hi)
        lo, hi = -bound, bound
    scale = (hi - lo) / (info.max - info.min)
    if scale <= np.finfo(np.float32).tiny:
        return 1.0, 0 if info.min < 0 else int(info.min)
    zero_point = 0 if info.min < 0 else int(np.clip(round(info.min - lo / scale), info.min, info.max))
    return scale, zero_point


def quantized_activations(model: onnx.ModelProto) -> list[str]:
    """Activation tensors that pass through a QuantizeLinear, in graph order, by their names in the float graph."""
    constants = {init.name for init in model.graph.initializer}
    casts = input_casts(model)
    seen: dict[str, None] = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in constants:
            seen[casts.get(node.input[0], node.input[0])] = None
    return list(seen)


def speed_costs(quantized: onnx.ModelProto, macs: Mapping[str, int]) -> dict[str, dict]:
    """For each quantized activation, what keeping it in float costs in speed: the compute nodes that lose
    their integer kernel (the Conv writing it, whose QLinearConv needs the output pair, and the compute
    nodes reading its DequantizeLinear) and their share of the model's MACs."""
    total = sum(macs.values()) or 1
    producer = {out: node for node in quantized.graph.node for out in node.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in quantized.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    costs: dict[str, dict] = {}
    for node in quantized.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in costs:
            continue
        written_by = producer.get(node.input[0])
        nodes = [written_by.name] if written_by is not None and written_by.name in macs else []
        for dequantize in readers.get(node.output[0], []):
            if dequantize.op_type == "DequantizeLinear":
                nodes += [r.name for r in readers.get(dequantize.output[0], []) if r.name in macs]
        nodes = list(dict.fromkeys(nodes))
        costs[node.input[0]] = {"nodes": nodes, "macs_share": sum(macs[n] for n in nodes) / total}
    return costs


def speed_cost(costs: Mapping[str, dict], float_tensors: Iterable[str], macs: Mapping[str, int]) -> dict:
    """What a fallback set costs together: the compute nodes that leave INT8, largest first, and their share."""
    nodes = dict.fromkeys(name for tensor in float_tensors for name in costs.get(tensor, {}).get("nodes", []))
    total = sum(macs.values()) or 1
    ranked = sorted(nodes, key=lambda name: -macs.get(name, 0))
    return {"macs_share": sum(macs.get(name, 0) for name in ranked) / total,
            "nodes": [{"node": name, "macs_share": macs.get(name, 0) / total} for name in ranked]}


def adjacent_nodes(original: onnx.ModelProto, tensors: Iterable[str], quantizable: set[str]) -> list[str]:
    """The quantizable nodes that make or read each tensor (through a folded Relu/Clip): keeping them
    in float is what keeps the tensor unquantized in the exported graph."""
    producer = {out: node for node in original.graph.node for out in node.output}
    chosen: dict[str, None] = {}
    for tensor in tensors:
        made_by = producer.get(tensor)
        while made_by is not None and made_by.op_type in FOLDED_ACTIVATIONS:
            chosen.setdefault(made_by.name, None)
            made_by = producer.get(made_by.input[0])
        if made_by is not None:
            chosen.setdefault(made_by.name, None)
        for node in original.graph.node:
            if tensor in node.input:
                chosen.setdefault(node.name, None)
    return [name for name in chosen if name in quantizable]
