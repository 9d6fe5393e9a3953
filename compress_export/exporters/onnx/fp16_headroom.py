"""FP16 where it fits: the float graph's layers converted to FP16 except those whose tensors come near FP16's
limit on calibration data, and no FP32 tensor between two kept layers squeezed through FP16 on the way. onnx-fp16
writes it as it is; trt-int8 around its Q/DQ pairs (exporters/tensorrt/fp16.py)."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import onnx

from ...graphs.onnx_io import session_with_outputs
from ...graphs.selection import names_read, sort_topologically, with_inferred_shapes

FP16_MAX = 65504.0
# A layer stays FP32 when its output reached 1/16 of FP16's largest value on the calibration data: later
# inputs may be larger than the calibration set's, and a square or a sum over a row grows fast.
HEADROOM = FP16_MAX / 16


def float_peaks(model: onnx.ModelProto, feeds: dict[str, np.ndarray], known: Collection[str] = ()) -> dict[str, float]:
    """The largest magnitude each float tensor of the main graph reaches on `feeds`, bar those `known` already
    (a run that returns every tensor holds them all in memory at once: gigabytes for a 128x128 UNet at batch 16)."""
    inferred = with_inferred_shapes(model)
    typed = {value.name: value.type.tensor_type.elem_type
             for value in (*inferred.graph.value_info, *inferred.graph.output)}
    known = set(known)
    names = [name for node in model.graph.node for name in node.output
             if name and typed.get(name) == onnx.TensorProto.FLOAT and name not in known]
    if not names:
        return {}
    values = session_with_outputs(model, names)(feeds)
    return {name: float(np.nanmax(np.abs(value))) if np.size(value) else 0.0 for name, value in values.items()}


def calibrated_peaks(ranges) -> dict[str, float]:
    """The largest finite magnitude of each tensor over the whole calibration set (its histogram's extremes; the
    calibrated range where the table was read from a file), or {} without a range table."""
    if ranges is None:
        return {}
    peaks = {name: ranges.amax(name) for name in ranges.ranges}
    peaks.update({name: max(abs(hist.min), abs(hist.max)) for name, hist in ranges.histograms.items()
                  if getattr(hist, "count", 0) and np.isfinite(hist.min) and np.isfinite(hist.max)})
    return peaks


def overflow_risks(model: onnx.ModelProto, feeds: dict[str, np.ndarray] | None,
                   known_peaks: dict[str, float] | None = None) -> list[str]:
    """Nodes of the FP32 graph that write or read a tensor beyond HEADROOM on `feeds` or in `known_peaks` (the
    whole calibration set's; or not finite): the tensor stays FP32 only if its producer and its readers all do."""
    peaks = dict(known_peaks or {})
    if feeds:
        peaks.update(float_peaks(model, feeds, known=peaks))  # the whole calibration set's peak where it has one
        peaks.update({name: float(np.nanmax(np.abs(value))) for name, value in feeds.items()
                      if np.issubdtype(np.asarray(value).dtype, np.floating) and np.size(value)})
    risky = {name for name, peak in peaks.items() if not np.isfinite(peak) or peak > HEADROOM}
    return [node.name for node in model.graph.node if risky & {*node.input, *node.output}]


def wide_qdq_nodes(model: onnx.ModelProto) -> list[str]:
    """QuantizeLinear/DequantizeLinear nodes of a tensor whose range reaches past HEADROOM (scale x 127): in FP16
    their scale or their dequantized output would overflow, so they keep FP32 scales."""
    scales = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.input[1] in scales
            and np.size(scales[node.input[1]]) and float(np.max(np.abs(scales[node.input[1]]))) * 127 > HEADROOM]


def mixed_fp16(model: onnx.ModelProto, fp32: onnx.ModelProto, feeds: dict[str, np.ndarray] | None,
               known_peaks: dict[str, float] | None = None) -> tuple[onnx.ModelProto, list[str]]:
    """`model` in FP16 with inputs and outputs FP32, the layers at risk on `feeds` or `known_peaks` (found on
    `fp32`, whose node names `model` shares) and the Q/DQ nodes of wide tensors kept FP32; and those nodes.
    Raises what the converter raises."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    kept = overflow_risks(fp32, feeds, known_peaks)
    kept += [name for name in wide_qdq_nodes(model) if name not in set(kept)]
    converted = convert_float_to_float16(model, keep_io_types=True, node_block_list=kept)
    _drop_fp16_round_trips(converted.graph)
    sort_topologically(converted.graph)  # the converter appends the input casts at the end
    return converted, kept


def _drop_fp16_round_trips(graph: onnx.GraphProto) -> None:
    """The converter passes every tensor between two FP32 layers through FP16 (Cast to FP16, Cast back): the
    overflow the layers were kept FP32 for. Each Cast back then reads the FP32 tensor itself."""
    types = {value.name: value.type.tensor_type.elem_type for value in graph.value_info}
    producer = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type != "Cast" or _cast_to(node) != onnx.TensorProto.FLOAT:
            continue
        narrowing = producer.get(node.input[0])
        if (narrowing is not None and narrowing.op_type == "Cast" and _cast_to(narrowing) == onnx.TensorProto.FLOAT16
                and types.get(narrowing.input[0]) == onnx.TensorProto.FLOAT):
            node.op_type, node.input[0] = "Identity", narrowing.input[0]
            del node.attribute[:]
    read = names_read(graph)
    kept = [node for node in graph.node
            if not (node.op_type == "Cast" and not any(out in read for out in node.output))]
    del graph.node[:]
    graph.node.extend(kept)
    written = {out for node in graph.node for out in node.output}
    values = [value for value in graph.value_info if value.name in written]
    del graph.value_info[:]
    graph.value_info.extend(values)


def _cast_to(node: onnx.NodeProto) -> int:
    return next((attribute.i for attribute in node.attribute if attribute.name == "to"), 0)
