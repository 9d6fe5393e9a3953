"""`trt-int8`: INT8 QDQ ONNX placed and scaled the way TensorRT's explicit quantization needs, a
TensorRT calibration cache, and an engine where TensorRT imports."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx

from ...calibration.range_table import RangeTable
from ...errors import ExportError, MissingDependencyError, UsageError
from ...graphs.onnx_io import save, set_metadata
from ...graphs.selection import COMPUTE_OPS, input_casts, level_path_note, nodes_touching, select_nodes
from ...specs import Artifact, QuantRecipe
from ..onnx.qdq import quantize_with_ranges
from ..onnx.qdq_rewrites import quantized_activations
from ..onnx.targets import MODEL_FILE
from ..registry import ExportContext
from .lint import FP32_LAYERS_KEY, lint_for_tensorrt

CACHE_FILE = "calibration.cache"
ENGINE_FILE = "model.engine"
TIMING_CACHE_FILE = "timing.cache"
PROXY_RUNTIME = "onnxruntime-exact"
PROXY_VALIDATION = "onnxruntime CPU, exact Q/DQ arithmetic (proxy for TensorRT)"
PROXY_NOTE = ("TensorRT is not installed here: validated the QDQ ONNX in onnxruntime as a proxy for the engine, "
              "with the Q/DQ arithmetic computed as written (no fused CPU integer kernels, which can saturate "
              "signed INT8 on CPUs without VNNI)")


def tensorrt_nodes(model: onnx.ModelProto, recipe: QuantRecipe) -> list[onnx.NodeProto]:
    """Inputs of compute ops, and residual Adds (both inputs computed), as ModelOpt places them."""
    compute = QuantRecipe(**{**recipe.__dict__, "include_ops": recipe.include_ops or COMPUTE_OPS})
    chosen = select_nodes(model, compute)
    if "Add" not in recipe.exclude_ops and not recipe.include_ops:
        constants = _constants(model)
        residual = QuantRecipe(include_ops=("Add",), exclude_nodes=recipe.exclude_nodes)
        chosen += [node for node in select_nodes(model, residual) if not set(node.input) & constants]
    return chosen


def _constants(model: onnx.ModelProto) -> set[str]:
    constants = {init.name for init in model.graph.initializer}
    return constants | {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}


def _missing_ranges(node: onnx.NodeProto, constants: set[str], amax: dict[str, float]) -> list[str]:
    """The node's activation inputs that have no range: Q/DQ goes only where a range was calibrated."""
    activations = node.input[:1] if node.op_type in ("Conv", "ConvTranspose", "Gemm") else node.input[:2]
    return [name for name in activations if name and name not in constants and name not in amax]


def symmetric_ranges(model: onnx.ModelProto, ranges: RangeTable) -> dict[str, float]:
    """amax per tensor; the inputs and output of a Concat share the largest, so they share one scale."""
    amax = {name: ranges.amax(name) for name in ranges.ranges if name not in ranges.skipped}
    for node in model.graph.node:
        if node.op_type == "Concat":
            members = [name for name in list(node.input) + list(node.output) if name in amax]
            if len(members) > 1:
                shared = max(amax[name] for name in members)
                amax.update({name: shared for name in members})
    return amax


def activation_scales(model: onnx.ModelProto) -> dict[str, float]:
    """The scale of every activation QuantizeLinear, by the name of the tensor it quantizes (through the Cast
    an FP16 graph puts before it)."""
    initializers = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    casts = input_casts(model)
    return {casts.get(node.input[0], node.input[0]): float(np.asarray(initializers[node.input[1]]).ravel()[0])
            for node in model.graph.node
            if node.op_type == "QuantizeLinear" and node.input[0] not in initializers}


def _write_float_precision(ctx: ExportContext, quantized: onnx.ModelProto, path) -> list[str]:
    """The unquantized layers in FP16 (the default), recorded in the model's metadata for the linter."""
    if ctx.options.float_precision != "fp16":
        return ["float layers FP32 (--trt-float fp32): under TensorRT 11 they run in FP32"]
    from ..onnx.fp16_headroom import calibrated_peaks
    from .fp16 import to_mixed_fp16

    feeds = next(iter(ctx.calibration.batches()), None) if ctx.calibration is not None else None
    mixed = to_mixed_fp16(quantized, onnx.load(str(ctx.fp32_onnx)), feeds, calibrated_peaks(ctx.ranges))
    set_metadata(mixed.model, {FP32_LAYERS_KEY: ",".join(mixed.kept_fp32)})
    save(mixed.model, path)
    kept = f"; {len(mixed.kept_fp32)} kept FP32 (tensors beyond FP16 headroom on the calibration data: " \
           f"{', '.join(mixed.kept_fp32[:5])}{', ...' if len(mixed.kept_fp32) > 5 else ''})" if mixed.kept_fp32 else ""
    return [f"float layers FP16 in the ONNX, Q/DQ scales FP16 at opset 19 (TensorRT 11 strong typing){kept}"]


def export_trt_int8(ctx: ExportContext) -> Artifact:
    return _with_engine(ctx, _write_qdq(ctx))


def searched_graph(ctx: ExportContext, folder) -> Artifact:
    """The QDQ ONNX of trt-int8 written to `folder`, without an engine: the graph the budget search rewrites and
    its exact trials (search/budget.py) export."""
    notes = _write_qdq(replace(ctx, bundle_dir=folder))
    return Artifact("trt-int8", str(folder / MODEL_FILE), ctx.inputs, ctx.outputs, PROXY_RUNTIME, tuple(notes))


def _write_qdq(ctx: ExportContext) -> list[str]:
    model = onnx.load(str(ctx.fp32_onnx))
    nodes = tensorrt_nodes(model, ctx.recipe)
    kept_float = set(nodes_touching(model, ctx.ranges.skipped))
    amax = symmetric_ranges(model, ctx.ranges)
    constants = _constants(model)
    uncalibrated = {node.name: missing for node in nodes if (missing := _missing_ranges(node, constants, amax))}
    chosen = [node.name for node in nodes if node.name not in kept_float | set(uncalibrated)
              and node.name not in ctx.float_nodes]
    if not chosen:
        raise UsageError("no node is eligible for quantization (check --include-ops / --exclude-*)")
    op_types = sorted({node.op_type for node in nodes})
    output = ctx.bundle_dir / MODEL_FILE
    quantize_with_ranges(
        ctx.fp32_onnx, output, {name: (-value, value) for name, value in amax.items()}, chosen, op_types,
        per_channel=ctx.recipe.per_channel, symmetric_activations=True,
        extra_options={"QuantizeBias": False, "OpTypesToExcludeOutputQuantization": op_types},
    )
    quantized = onnx.load(str(output))
    activations = sorted(quantized_activations(quantized))
    precision_notes = _write_float_precision(ctx, quantized, output)
    violations = lint_for_tensorrt(onnx.load(str(output)), ctx.options.float_precision)
    if violations:
        listed = "; ".join(str(v) for v in violations[:3])
        raise ExportError(f"the TensorRT QDQ model breaks {len(violations)} rule(s): {listed}")
    (ctx.bundle_dir / CACHE_FILE).write_text(
        ctx.ranges.to_trt_cache(ctx.options.cache_version, ctx.options.cache_algorithm, tensors=activations))
    notes = [f"{len(chosen)} nodes quantized ({', '.join(op_types)}), symmetric INT8, biases in float",
             *(f"kept in float: {name} (no calibrated range for {', '.join(missing)})"
               for name, missing in sorted(uncalibrated.items())),
             *level_path_note(model, op_types), *precision_notes,
             f"{CACHE_FILE}: {len(activations)} tensors, TRT-{ctx.options.cache_version}-{ctx.options.cache_algorithm},"
             " for TensorRT <= 10 (implicit quantization, removed in TensorRT 11: there the Q/DQ ONNX carries the "
             "scales)",
             "passes the TensorRT QDQ linter"]
    return notes


def _with_engine(ctx: ExportContext, notes: list[str]) -> Artifact:
    from .engine import EngineBuildSettings, build_engine, tensorrt_available

    if not tensorrt_available():
        if ctx.options.require_engine:
            raise MissingDependencyError("tensorrt not installed: cannot build the engine required by "
                                         "--require-engine (build it on the target: compress-export build-engine)")
        return Artifact("trt-int8", MODEL_FILE, ctx.inputs, ctx.outputs, PROXY_RUNTIME, (*notes, PROXY_NOTE),
                        details={"engine_built": False, "validated_with": PROXY_VALIDATION})
    settings = EngineBuildSettings(ctx.inputs, ctx.options.max_batch, ctx.example_shapes, ctx.options.engine)
    versions = build_engine(ctx.bundle_dir / MODEL_FILE, ctx.bundle_dir / ENGINE_FILE,
                            ctx.bundle_dir / TIMING_CACHE_FILE, settings)
    return Artifact("trt-int8", ENGINE_FILE, ctx.inputs, ctx.outputs, "tensorrt", tuple(notes),
                    details={"engine_built": True, "validated_with": "TensorRT", "tensorrt": versions})


def tensorrt_or_proxy(artifact: dict, require_engine: bool) -> tuple[dict, list[str]]:
    """`validate` elsewhere: the engine where TensorRT runs here, else the QDQ ONNX in onnxruntime as a proxy."""
    from .engine import tensorrt_available

    if artifact["runtime"] == "tensorrt" and tensorrt_available():
        return artifact, []
    if require_engine:
        reason = "tensorrt not installed" if artifact["runtime"] == "tensorrt" else "the bundle has no engine"
        raise MissingDependencyError(f"{reason}: --require-engine needs a TensorRT engine run "
                                     "(build one on the target with compress-export build-engine BUNDLE)")
    proxy = {**artifact, "path": MODEL_FILE, "runtime": PROXY_RUNTIME,
             "validated_with": PROXY_VALIDATION}
    return proxy, [PROXY_NOTE]
