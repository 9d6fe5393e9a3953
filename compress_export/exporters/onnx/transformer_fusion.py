"""onnxruntime's transformer optimizer on a finished INT8 QDQ graph: SkipLayerNormalization (residual Add +
LayerNorm) and BiasGelu (bias Add + erf GELU) fused into one kernel each. They are float subgraphs between the
quantized MatMuls (whose products stay float), so no Q/DQ pair moves and the graph computes the same function;
on all-MiniLM-L6-v2 at batch 32 the INT8 artifact goes from 1.78x to 1.96x FP32 at the same cosine on an
AVX512-VNNI CPU (1.46x to 1.59x without VNNI). Attention fusion stays off: the fused Attention op takes the
Q/K/V weights as float inputs, which would undo their INT8 MatMuls.

A fused kernel sums in another order, and in a quantized graph a last-bit change can tip an activation over a
rounding boundary into the next INT8 step, which later layers carry on (on MiniLM a 2e-6 change in a LayerNorm
moves the embedding up to 0.1 of its 1.15 scale while its cosine to FP32 stays 0.9922). So the check here is
that the fused graph computes the same function: outputs within 1e-4 of their scale, or, where a quantizer
sits between, within 5% relative L2 (a wrong fusion lands near 100%). The budget stage then validates the
fused file against the gates again and restores the unfused one if it misses a gate that one met."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FUSED_OPS = ("SkipLayerNormalization", "BiasGelu", "LayerNormalization", "FastGelu", "Gelu")
TOLERANCE = 1e-4  # of each output's largest magnitude: float reassociation alone
ROUNDING_TOLERANCE = 0.05  # relative L2 error: INT8 steps taken at different rounding boundaries


def fuse_transformer_subgraphs(path: Path, feeds: dict[str, np.ndarray]) -> list[str]:
    """Fuse in place where the optimizer finds a pattern and the graph computes the same function on `feeds`; the
    notes say what was fused (or why not)."""
    import onnx
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    from ...graphs.onnx_io import save
    from ...util.quiet_logs import quiet_loggers

    original = onnx.load(str(path))
    if not has_fusable_ops(original):
        return []
    options = FusionOptions("bert")
    options.enable_attention = False
    options.enable_embed_layer_norm = False
    with quiet_loggers("onnxruntime.transformers"):  # a warning when the producer is not PyTorch, stats at INFO
        try:
            working = onnx.ModelProto()
            working.CopyFrom(original)  # the optimizer edits the model it is given
            fused = optimizer.optimize_model(working, model_type="bert", num_heads=0, hidden_size=0,
                                             optimization_options=options, opt_level=0)
        except Exception:  # a graph the optimizer cannot read ships as it is; its fusions are a speed-up only
            return []
    counts = {op: n for op, n in fused.get_fused_operator_statistics().items() if op in FUSED_OPS and n}
    if not counts:
        return []
    try:
        before = _run(original.SerializeToString(), feeds)
        after = _run(fused.model.SerializeToString(), feeds)
    except Exception:  # a graph above protobuf's 2 GB, or a fused one onnxruntime refuses: ships unfused
        return ["transformer fusions skipped: the fused graph could not be checked in onnxruntime"]
    verdict = same_function(before, after, _quantized(original))
    if verdict is None:
        return ["transformer fusions skipped: the fused graph's outputs differ"]
    save(fused.model, path)
    note = ("transformer fusions (onnxruntime's optimizer, attention off): "
            + ", ".join(f"{n} {op}" for op, n in sorted(counts.items())))
    return [note if verdict == 0.0 else f"{note}; outputs moved {verdict:.1%} (relative L2) where INT8 rounding tipped"]


def has_fusable_ops(model) -> bool:
    """Whether the graph has what the fusions start from: a LayerNorm (as one op, or ReduceMean and Sqrt), or a
    GELU (Erf, or Tanh and Pow). Without them the optimizer finds nothing, and its symbolic shape inference alone
    took 76 s on the PP-OCRv4 detector (sympy over each Resize)."""
    ops = {node.op_type for node in model.graph.node}
    return bool(ops & {"LayerNormalization", "SimplifiedLayerNormalization", "Erf", "Gelu"}) or \
        {"ReduceMean", "Sqrt"} <= ops or {"Tanh", "Pow"} <= ops


def same_function(before: list[np.ndarray], after: list[np.ndarray], quantized: bool) -> float | None:
    """None when `after` is not the same function as `before`; else 0.0 when they agree to float reassociation, or
    the largest relative L2 move of an output when a quantized graph's rounding tipped elsewhere."""
    if len(before) != len(after) or any(a.shape != b.shape for a, b in zip(before, after, strict=False)):
        return None
    pairs = list(zip(before, after, strict=True))
    if all(np.abs(a - b).max(initial=0.0) <= TOLERANCE * _scale(a) for a, b in pairs):
        return 0.0
    moved = max(float(np.linalg.norm(a - b) / max(float(np.linalg.norm(a)), 1e-12)) for a, b in pairs)
    return moved if quantized and moved <= ROUNDING_TOLERANCE else None


def _scale(values: np.ndarray) -> float:
    return max(float(np.abs(values).max(initial=0.0)), 1e-12)


def _quantized(model) -> bool:
    return any(node.op_type == "QuantizeLinear" for node in model.graph.node)


def _run(model: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Outputs of `model` on sample-major `feeds`, through the project's one session wrapper."""
    from ...runtimes.ort_session import Session

    return [np.asarray(out, dtype=np.float64) for out in Session(model, what="the fused graph").run(None, feeds)]
