"""Static QDQ quantization by onnxruntime's quantizer, fed with our ranges instead of its calibrators."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx

from ...errors import ExportError
from ...graphs.onnx_io import data_file, needs_external_data, save
from ...graphs.selection import names_read, outer_reads, sort_topologically
from ...util.quiet_logs import quiet_loggers

# Ops whose INT8 kernel in onnxruntime writes a quantized output (QLinearConv): their output pair stays.
INTEGER_OUTPUT_OPS = ("Conv",)


def quantize_with_ranges(
    fp32: Path,
    output: Path,
    ranges: Mapping[str, tuple[float, float]],
    nodes: Sequence[str],
    op_types: Sequence[str],
    *,
    per_channel: bool,
    symmetric_activations: bool,
    extra_options: Mapping[str, object] = (),
) -> None:
    """QDQ with per-channel symmetric INT8 weights; activations INT8 symmetric or UINT8 asymmetric.
    The ranges reach the quantizer through its calibration-cache hook, so none of its calibrators run."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data

    tensors = TensorsData(CalibrationMethod.MinMax, {
        name: TensorData(lowest=np.float32(lo), highest=np.float32(hi)) for name, (lo, hi) in ranges.items()})
    options = {"ActivationSymmetric": symmetric_activations, "WeightSymmetric": True, **dict(extra_options)}
    data_file(output).unlink(missing_ok=True)  # a re-export would append to the old weights
    with tempfile.TemporaryDirectory(prefix="ce-qdq-") as tmp:
        cache = Path(tmp) / "ranges.ort.json"
        save_tensors_data(tensors, cache)
        try:
            with quiet_loggers(""):  # the quantizer warns through the root logger on every call
                quantize_static(
                    str(fp32), str(output), calibration_data_reader=None, quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(op_types), per_channel=per_channel,
                    activation_type=QuantType.QInt8 if symmetric_activations else QuantType.QUInt8,
                    weight_type=QuantType.QInt8, nodes_to_quantize=list(nodes),
                    calibrate_method=CalibrationMethod.MinMax, calibration_cache_path=str(cache),
                    extra_options=options, use_external_data_format=needs_external_data(fp32),
                )
        except Exception as exc:
            raise ExportError(f"QDQ quantization failed: {type(exc).__name__}: {exc}") from None
    if any(outer_reads(node) for node in onnx.load(str(output), load_external_data=False).graph.node):
        model = onnx.load(str(output))
        if sort_topologically(model.graph):
            save(model, output)


def detach_float_readers(quantized: Path, original: onnx.ModelProto, quantized_nodes: Iterable[str]) -> int:
    """Give nodes that stay in float the exact tensor again. onnxruntime's quantizer routes every reader
    of a quantized activation through its DequantizeLinear, so a residual Add next to a quantized MatMul
    would read the rounded value; a float reader only needs the tensor it read in the original graph.
    A quantized Conv's output keeps its pair: onnxruntime fuses DequantizeLinear-Conv-QuantizeLinear into
    one QLinearConv only when the output is quantized, and that kernel is the INT8 speed-up.
    Rewires in place; returns how many inputs changed."""
    model = onnx.load(str(quantized))
    original_inputs = {node.name: list(node.input) for node in original.graph.node}
    producer = {out: node for node in model.graph.node for out in node.output}
    keep_quantized = set(quantized_nodes)
    rewired = 0
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") or node.name in keep_quantized:
            continue
        before = original_inputs.get(node.name)
        for index, name in enumerate(node.input):
            dequantize = producer.get(name)
            if dequantize is None or dequantize.op_type != "DequantizeLinear":
                continue
            quantize = producer.get(dequantize.input[0])
            if quantize is None or quantize.op_type != "QuantizeLinear":
                continue
            written_by = producer.get(quantize.input[0])
            if written_by is not None and written_by.op_type in INTEGER_OUTPUT_OPS and \
                    written_by.name in keep_quantized:
                continue
            # Where a Relu or Clip was folded into the pair, the float tensor before it is not what this node read.
            if before is None or index >= len(before) or before[index] != quantize.input[0]:
                continue
            node.input[index] = quantize.input[0]
            rewired += 1
    if rewired:
        drop_unread_qdq(model)
        save(model, quantized)
    return rewired


def drop_unread_qdq(model: onnx.ModelProto) -> None:
    """Remove Q/DQ nodes nobody reads (repeatedly), then the initializers nothing reads any more."""
    while True:
        read = names_read(model.graph)  # subgraphs read outer tensors by name: those readers count too
        unread = [node for node in model.graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear")
                  and not any(out in read for out in node.output)]
        if not unread:
            break
        for node in unread:
            model.graph.node.remove(node)
    read = names_read(model.graph)
    unused = [init for init in model.graph.initializer if init.name not in read]
    for init in unused:
        model.graph.initializer.remove(init)
