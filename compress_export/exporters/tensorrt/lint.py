"""Checks that a QDQ ONNX model follows the rules TensorRT's explicit quantization needs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ...graphs.onnx_io import metadata
from ...graphs.selection import default_opset, with_inferred_shapes

MIN_OPSET = 13
FP16_QDQ_OPSET = 19  # QuantizeLinear/DequantizeLinear take FP16 from here
WEIGHT_CONSUMERS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
# The model's metadata key naming the layers deliberately left FP32 in an FP16 graph (overflow headroom).
FP32_LAYERS_KEY = "compress_export.fp32_layers"
# The model's metadata key saying its weights were masked to a structured-sparsity pattern ("2:4").
SPARSITY_KEY = "compress_export.sparsity"


@dataclass(frozen=True)
class Violation:
    rule: str
    node: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.rule}: {self.node}: {self.message}"


class _Graph:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type == "Constant":
                for attribute in node.attribute:
                    if attribute.name == "value":
                        self.constants[node.output[0]] = numpy_helper.to_array(attribute.t)
        self.producer = {out: node for node in model.graph.node for out in node.output}
        self.consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for node in model.graph.node:
            for index, name in enumerate(node.input):
                self.consumers.setdefault(name, []).append((node, index))
        self.outputs = {output.name for output in model.graph.output}


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return attribute.i
    return default


def _output_channel_axis(consumer: onnx.NodeProto, weight_rank: int) -> int:
    if consumer.op_type == "ConvTranspose":
        return 1
    if consumer.op_type == "Gemm":
        return 0 if _attribute(consumer, "transB", 0) else 1
    if consumer.op_type == "MatMul":
        return weight_rank - 1
    return 0


def lint_for_tensorrt(model: onnx.ModelProto, float_precision: str | None = None,
                      sparsity: str | None = None) -> list[Violation]:
    """`float_precision="fp16"` also checks that every compute layer left unquantized computes in FP16 (TensorRT 11
    takes each layer's precision from the ONNX), except those the model's metadata names as kept FP32.
    `sparsity="2:4"` (or the model's metadata saying so) checks the 2:4 pattern of every eligible weight."""
    graph = _Graph(model)
    found: list[Violation] = []
    opset = default_opset(model)
    if opset < MIN_OPSET:
        found.append(Violation("opset", "<model>", f"opset {opset} < {MIN_OPSET}: per-channel Q/DQ needs opset 13"))
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            found += _check_qdq(graph, node)
            found += _check_scale_type(graph, node, opset)
        elif node.op_type == "Concat":
            found += _check_concat(graph, node)
    if float_precision == "fp16":
        found += _check_fp16_layers(model)
    if (sparsity or metadata(model, SPARSITY_KEY)) == "2:4":
        found += _check_2_4(graph)
    return found


def _reduction_axis(consumer: onnx.NodeProto, weight_rank: int) -> int:
    """The weight's input-channel axis, along which 2:4 groups run."""
    if consumer.op_type == "Gemm":
        return 1 if _attribute(consumer, "transB", 0) else 0
    if consumer.op_type == "MatMul":
        return weight_rank - 2
    return 1  # Conv: [out, in / groups, *kernel]


def groups_breaking_2_4(weight: np.ndarray, axis: int) -> int:
    """How many groups of four consecutive weights along `axis` hold more than two non-zeros."""
    moved = np.moveaxis(weight, axis, -1)
    return int(((moved.reshape(-1, 4) != 0).sum(axis=1) > 2).sum())


def _check_2_4(graph: _Graph) -> list[Violation]:
    """Every weight of a Conv (ungrouped), Gemm or MatMul whose input width is a multiple of four, read directly
    or through its DequantizeLinear, must keep at most two non-zeros in each group of four."""
    found = []
    for node in graph.model.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2 or _attribute(node, "group", 1) != 1:
            continue
        source = graph.producer.get(node.input[1])
        name = source.input[0] if source is not None and source.op_type == "DequantizeLinear" else node.input[1]
        weight = graph.constants.get(name)
        if weight is None or weight.ndim < 2:
            continue
        axis = _reduction_axis(node, weight.ndim)
        if weight.shape[axis] % 4:
            continue
        broken = groups_breaking_2_4(weight, axis)
        if broken:
            found.append(Violation("sparsity", node.name or node.output[0],
                                   f"{broken} of {weight.size // 4} weight groups of four hold more than two "
                                   "non-zeros (2:4 pattern broken)"))
    return found


def _check_scale_type(graph: _Graph, node: onnx.NodeProto, opset: int) -> list[Violation]:
    scale = graph.constants.get(node.input[1])
    if scale is not None and scale.dtype == np.float16 and opset < FP16_QDQ_OPSET:
        return [Violation("qdq-type", node.name or node.output[0], f"FP16 scale at opset {opset}: ONNX defines "
                          f"{node.op_type} on FP16 from opset {FP16_QDQ_OPSET}")]
    return []


def _check_fp16_layers(model: onnx.ModelProto) -> list[Violation]:
    inferred = with_inferred_shapes(model)
    types = {value.name: value.type.tensor_type.elem_type
             for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output)}
    types.update({init.name: init.data_type for init in model.graph.initializer})
    kept = metadata(model, FP32_LAYERS_KEY) or ""
    allowed = set(filter(None, kept.split(",")))
    return [Violation("precision", node.name, f"{node.op_type} computes in FP32; under TensorRT 11 it runs in FP32 "
                      "(the float layers of this graph were meant to be FP16)")
            for node in model.graph.node
            if node.op_type in WEIGHT_CONSUMERS and node.name not in allowed
            and types.get(node.input[0]) == onnx.TensorProto.FLOAT]


def _check_qdq(graph: _Graph, node: onnx.NodeProto) -> list[Violation]:
    found = []
    name = node.name or node.output[0]
    scale = graph.constants.get(node.input[1])
    if scale is None:
        found.append(Violation("scale", name, "scale must be a constant"))
    elif not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
        found.append(Violation("scale", name, "scales must be positive and finite"))
    zero_point = graph.constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if len(node.input) < 3 or not node.input[2]:
        if node.op_type == "QuantizeLinear":
            found.append(Violation("int8", name, "no zero point: the output defaults to UINT8; TensorRT needs INT8"))
    elif zero_point is None:
        found.append(Violation("zero-point", name, "zero point must be a constant"))
    else:
        if zero_point.dtype != np.int8:
            found.append(Violation("int8", name, f"zero point is {zero_point.dtype}; TensorRT supports only INT8 Q/DQ"))
        if np.any(zero_point != 0):
            found.append(Violation("zero-point", name,
                                   "zero point must be 0: TensorRT supports only symmetric quantization"))
    if node.op_type == "DequantizeLinear":
        found += _check_dequantize(graph, node, name, scale)
    if any(output in graph.outputs for output in node.output):
        found.append(Violation("graph-output", name,
                               f"{node.op_type} produces a graph output; TensorRT cannot fuse it"))
    return found


def _check_dequantize(graph: _Graph, node: onnx.NodeProto, name: str, scale) -> list[Violation]:
    found = []
    for consumer, index in graph.consumers.get(node.output[0], []):
        if consumer.op_type in ("Conv", "ConvTranspose", "Gemm") and index == 2:
            found.append(Violation("bias", name, f"bias of {consumer.name} is quantized; keep biases in float "
                                   "(TensorRT's parser rejects an INT32 bias DequantizeLinear)"))
    data = graph.constants.get(node.input[0])
    if data is None:
        return found
    if data.dtype != np.int8:
        found.append(Violation("int8", name, f"quantized weight is {data.dtype}; TensorRT needs INT8"))
    elif data.size and (data.min() < -127 or data.max() > 127):
        found.append(Violation("weight-range", name, "INT8 weights must lie in [-127, 127]"))
    if scale is not None and np.size(scale) > 1:
        axis = _attribute(node, "axis", 1)
        axis = axis + data.ndim if axis < 0 else axis
        for consumer, index in graph.consumers.get(node.output[0], []):
            if consumer.op_type in WEIGHT_CONSUMERS and index == 1:
                wanted = _output_channel_axis(consumer, data.ndim)
                if axis != wanted:
                    found.append(Violation("channel-axis", name, f"per-channel axis {axis} of the weight of "
                                           f"{consumer.name}; TensorRT needs the output-channel axis {wanted}"))
    return found


def _check_concat(graph: _Graph, node: onnx.NodeProto) -> list[Violation]:
    scales = []
    for name in node.input:
        producer = graph.producer.get(name)
        if producer is None or producer.op_type != "DequantizeLinear":
            return []
        scales.append(graph.constants.get(producer.input[1]))
    if any(scale is None for scale in scales):
        return []
    if len({float(np.asarray(scale).ravel()[0]) for scale in scales}) > 1 or any(np.size(s) != 1 for s in scales):
        return [Violation("concat-scale", node.name, "Concat inputs must share one scale so TensorRT can fuse it")]
    return []
