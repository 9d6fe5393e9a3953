"""ONNX targets: FP32, FP16, static INT8 QDQ from our ranges, dynamic INT8. All validated in onnxruntime."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import onnx

from ...errors import ExportError, UsageError
from ...graphs.onnx_io import data_file, external_files, needs_external_data, save
from ...graphs.selection import level_path_note, nodes_touching, op_types, select_nodes
from ...specs import Artifact
from ...util.quiet_logs import quiet_loggers
from ..registry import ExportContext
from .embedding_int8 import quantize_embedding_tables
from .qdq import detach_float_readers, quantize_with_ranges

MODEL_FILE = "model.onnx"
DYNAMIC_OPS = ("MatMul", "Gemm")
FLOAT_OUTPUT_OPS = ("MatMul", "Gemm")


def _artifact(ctx: ExportContext, target: str, notes: tuple[str, ...] = ()) -> Artifact:
    return Artifact(target, MODEL_FILE, ctx.inputs, ctx.outputs, "onnxruntime", notes)


def export_fp32(ctx: ExportContext) -> Artifact:
    if external_files(ctx.fp32_onnx):
        save(onnx.load(str(ctx.fp32_onnx)), ctx.bundle_dir / MODEL_FILE)
    else:
        shutil.copyfile(ctx.fp32_onnx, ctx.bundle_dir / MODEL_FILE)
    return _artifact(ctx, "onnx")


def export_fp16(ctx: ExportContext) -> Artifact:
    """FP16 with FP32 inputs and outputs; layers whose tensors come near FP16's limit on the calibration data (a
    norm's sum of squares, a time embedding, logits) stay FP32."""
    from .fp16_headroom import calibrated_peaks, mixed_fp16

    fp32 = onnx.load(str(ctx.fp32_onnx))
    feeds = next(iter(ctx.calibration.batches()), None) if ctx.calibration is not None else None
    try:
        model, kept = mixed_fp16(fp32, fp32, feeds, calibrated_peaks(ctx.ranges))
    except Exception as exc:
        raise ExportError(f"FP16 conversion failed: {str(exc).splitlines()[0][:200]}") from None
    save(model, ctx.bundle_dir / MODEL_FILE)
    notes = [f"{len(kept)} layers kept FP32 (their tensors come near FP16's limit on the calibration data: "
             f"{', '.join(kept[:5])}{', ...' if len(kept) > 5 else ''})"] if kept else []
    return _artifact(ctx, "onnx-fp16", tuple(notes))


def export_int8(ctx: ExportContext) -> Artifact:
    model = onnx.load(str(ctx.fp32_onnx))
    ranges = ctx.ranges
    selected = [node.name for node in select_nodes(model, ctx.recipe)]
    kept_float = set(nodes_touching(model, ranges.skipped)) & set(selected)
    chosen = [name for name in selected if name not in kept_float and name not in ctx.float_nodes]
    if not chosen:
        raise UsageError("no node is eligible for quantization (check --include-ops / --exclude-*)")
    notes = [f"kept in float: {name} (touches a tensor that {_reason(model, name, ranges.skipped)})"
             for name in sorted(kept_float)] + level_path_note(model, op_types(ctx.recipe))
    usable = {name: value for name, value in ranges.ranges.items() if name not in ranges.skipped}
    # MatMul/Gemm outputs stay float: onnxruntime then runs them as MatMulIntegerToFloat/QGemm with
    # the bias and residual in float, faster and closer than requantizing every product.
    quantize_with_ranges(ctx.fp32_onnx, ctx.bundle_dir / MODEL_FILE, usable, chosen, op_types(ctx.recipe),
                         per_channel=ctx.recipe.per_channel, symmetric_activations=False,
                         extra_options={"OpTypesToExcludeOutputQuantization": list(FLOAT_OUTPUT_OPS)})
    detach_float_readers(ctx.bundle_dir / MODEL_FILE, model, chosen)
    quantized = onnx.load(str(ctx.bundle_dir / MODEL_FILE))
    tables = quantize_embedding_tables(quantized)
    if tables:
        save(quantized, ctx.bundle_dir / MODEL_FILE)
    notes.insert(0, f"{len(chosen)} nodes quantized ({', '.join(op_types(ctx.recipe))})")
    return _artifact(ctx, "onnx-int8", tuple(notes + tables))


def _reason(model: onnx.ModelProto, node_name: str, skipped: dict[str, str]) -> str:
    node = next(n for n in model.graph.node if n.name == node_name)
    for tensor in list(node.input) + list(node.output):
        if tensor in skipped:
            return skipped[tensor]
    return "cannot be quantized"


def export_dynamic(ctx: ExportContext) -> Artifact:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    wanted = [op for op in op_types(ctx.recipe) if op in DYNAMIC_OPS] or list(DYNAMIC_OPS)
    with tempfile.TemporaryDirectory(prefix="ce-dynamic-") as tmp, quiet_loggers(""):
        # The exporter's value_info can disagree with the quantizer's rewrite of a transposed Gemm
        # ("Inferred shape and existing shape differ"); it is derived data, re-inferred on load.
        model = onnx.load(str(ctx.fp32_onnx))
        del model.graph.value_info[:]
        stripped = Path(tmp) / "model.onnx"
        save(model, stripped)
        data_file(ctx.bundle_dir / MODEL_FILE).unlink(missing_ok=True)
        try:
            quantize_dynamic(
                str(stripped), str(ctx.bundle_dir / MODEL_FILE), op_types_to_quantize=wanted,
                per_channel=ctx.recipe.per_channel, weight_type=QuantType.QInt8,
                use_external_data_format=needs_external_data(stripped),
            )
        except Exception as exc:
            raise ExportError(f"dynamic quantization failed: {type(exc).__name__}: {exc}") from None
    return _artifact(ctx, "onnx-dynamic", (f"dynamic INT8 on {', '.join(wanted)}; Conv stays FP32",))
