"""Parameters, MACs and FLOPs per sample, counted from an ONNX graph at batch 1.

Compute ops only (Conv, ConvTranspose, MatMul, Gemm and their integer and 4-bit forms): they are where
the time goes. Their shapes are measured by running the graph once on one held-out sample where one is
at hand (transformers reshape through Shape ops that static inference cannot follow), else inferred by
onnx's shape inference with the symbolic dimensions set.
FLOPs = 2 x MACs. Parameters: elements of the initializers the graph reads, less quantization scales and
zero points."""

from __future__ import annotations

import contextlib
from math import prod
from pathlib import Path

from .base import ArtifactMetric, ArtifactProbe

QDQ_PARAMETERS = {"QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2), "DynamicQuantizeLinear": ()}
MATMUL_OPS = {"MatMul", "MatMulInteger", "MatMulIntegerToFloat", "QLinearMatMul", "FusedMatMul"}
CONV_OPS = {"Conv", "ConvInteger", "QLinearConv", "ConvTranspose"}


COMPUTE_OPS = MATMUL_OPS | CONV_OPS | {"Gemm", "QGemm", "MatMulNBits"}


def count_model(model, example_shapes: dict[str, tuple[int, ...]] | None = None, feeds: dict | None = None) -> dict:
    """{parameters, macs, flops} per sample. Shapes come from one run on the first sample of `feeds` when
    given, else from shape inference with symbolic input dimensions taken from `example_shapes` (batch 1)."""

    by_node = macs_by_node(model, example_shapes, feeds)
    counted = [value for _, value in by_node if value is not None]
    macs = sum(counted)
    return {"parameters": parameter_count(model), "macs": macs, "flops": 2 * macs, "compute_ops": len(counted),
            "compute_ops_without_shape": len(by_node) - len(counted)}


def macs_by_node(model, example_shapes: dict[str, tuple[int, ...]] | None = None,
                 feeds: dict | None = None) -> list[tuple[str, int | None]]:
    """(node name, MACs per sample) of each compute node; None where its shapes stay unknown."""
    import onnx

    model = _concrete(model, example_shapes or {})
    with contextlib.suppress(Exception):  # best effort: ops whose shapes stay unknown are not counted
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = _shapes(model)
    if feeds:
        shapes.update(_measured_shapes(model, {name: value[:1] for name, value in feeds.items()}))
    return [(node.name, node_macs(node, shapes)) for node in model.graph.node if node.op_type in COMPUTE_OPS]


def node_macs(node, shapes: dict[str, tuple]) -> int | None:
    op = node.op_type
    out = shapes.get(node.output[0])
    if out is None or any(not isinstance(d, int) for d in out):
        return None
    if op in MATMUL_OPS or op == "MatMulNBits":
        a = shapes.get(node.input[0])
        return None if not a or not isinstance(a[-1], int) else prod(out) * a[-1]
    if op in ("Gemm", "QGemm"):
        a = shapes.get(node.input[0])
        if not a or len(a) != 2 or not all(isinstance(d, int) for d in a):
            return None
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        return prod(out) * (a[0] if trans_a else a[1])
    weight = shapes.get(node.input[3] if op == "QLinearConv" else node.input[1])
    if not weight or not all(isinstance(d, int) for d in weight):
        return None
    if op == "ConvTranspose":  # weight (C_in, C_out/group, k...): every input element meets the whole kernel
        x = shapes.get(node.input[0])
        return None if not x or not all(isinstance(d, int) for d in x) else prod(x) * prod(weight[1:])
    return prod(out) * prod(weight[1:])  # weight (C_out, C_in/group, k...): group already folded in


def parameter_count(model) -> int:
    skip = {node.input[i] for node in model.graph.node for i in QDQ_PARAMETERS.get(node.op_type, ())
            if i < len(node.input)}
    skip |= {node.input[i] for node in model.graph.node if node.op_type in ("QLinearConv", "QLinearMatMul")
             for i in range(len(node.input)) if i not in (0, 3)}
    read = {name for node in model.graph.node for name in node.input}  # quantizers leave unread initializers
    total = 0
    for init in model.graph.initializer:
        if init.name in read and init.name not in skip:
            total += prod(init.dims) if init.dims else 1
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].t.dims:
            total += prod(node.attribute[0].t.dims)
    return total


def _concrete(model, example_shapes: dict):
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    del copy.graph.value_info[:]
    from ..data.layout import batch_axis

    for value in copy.graph.input:
        example = example_shapes.get(value.name)
        dims = value.type.tensor_type.shape.dim
        samples_on = batch_axis([d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims])
        for index, dim in enumerate(dims):
            if index == samples_on:
                dim.dim_value = 1
            elif not dim.HasField("dim_value"):
                dim.dim_value = int(example[index]) if example and index < len(example) else 1
    return copy


def _measured_shapes(model, feeds: dict) -> dict[str, tuple]:
    """The shapes of every compute op's inputs and outputs in one onnxruntime run (empty if it fails)."""
    import onnx
    import onnxruntime as ort

    from ..graphs import onnx_io

    constants = {init.name for init in model.graph.initializer}
    wanted = list(dict.fromkeys(name for node in model.graph.node if node.op_type in COMPUTE_OPS
                                for name in (*node.input, *node.output) if name and name not in constants))
    if not wanted:  # an empty name list would run every output
        return {}
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {out.name for out in copy.graph.output}
    copy.graph.output.extend(onnx.ValueInfoProto(name=name) for name in wanted if name not in present)  # any type
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = onnx_io.session(copy, options)
        inputs = {value.name for value in session.get_inputs()}
        values = session.run(wanted, {k: v for k, v in feeds.items() if k in inputs})
    except Exception:  # a graph that will not run this way keeps the inferred shapes
        return {}
    return {name: tuple(int(d) for d in value.shape) for name, value in zip(wanted, values, strict=True)}


def _shapes(model) -> dict[str, tuple]:
    shapes = {}
    for value in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims)
    for init in model.graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _human(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}"


class Flops(ArtifactMetric):
    name = "flops"
    title = "Compute"

    def measure(self, probe: ArtifactProbe) -> dict | None:
        import onnx

        feeds = probe.batches[0][0] if probe.batches else {}
        shapes = {name: value.shape for name, value in feeds.items()}
        result = {}
        own, original = probe.fp32_onnx, probe.original_onnx or probe.fp32_onnx  # before: the original model
        if original is not None and Path(original).is_file():
            result["reference"] = count_model(onnx.load(str(original)), shapes, feeds)
        if Path(probe.path).suffix == ".onnx":
            result["candidate"] = count_model(onnx.load(str(probe.path)), shapes, feeds)
        elif own is not None and own != original and Path(own).is_file():
            result["candidate"] = count_model(onnx.load(str(own)), shapes, feeds)
            result["note"] = "the artifact is not ONNX: its counts are those of the FP32 ONNX graph it was made from"
        elif "reference" in result:
            result["note"] = "the artifact is not ONNX: counts are those of the FP32 ONNX graph of the same model"
        if result:
            result["unit"] = "per sample (batch 1; other dynamic dimensions as in the validation data)"
        return result or None

    def markdown(self, result: dict) -> list[str]:
        ref, cand = result.get("reference", {}), result.get("candidate", result.get("reference", {}))
        lines = ["| compute | FP32 | candidate |", "|---|---|---|"]
        for key, label in (("parameters", "parameters"), ("macs", "MACs"), ("flops", "FLOPs")):
            lines.append(f"| {label} | {_human(ref[key]) if ref else ''} | {_human(cand[key]) if cand else ''} |")
        lines += ["", f"Counted {result['unit']}." + (f" {result['note']}." if "note" in result else "")]
        return lines

    def summary(self, result: dict) -> str | None:
        side = result.get("candidate") or result.get("reference")
        return f"{_human(side['flops'])}FLOPs" if side else None


METRIC = Flops()
