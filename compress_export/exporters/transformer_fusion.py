"""onnxruntime's transformer optimizer on a finished INT8 QDQ graph: SkipLayerNormalization (residual Add +
LayerNorm) and BiasGelu (bias Add + erf GELU) fused into one kernel each. They are float subgraphs between the
quantized MatMuls (whose products stay float), so no Q/DQ pair moves and the numbers stay the graph's; on
all-MiniLM-L6-v2 at batch 32 the INT8 artifact goes from 1.46x to 1.59x FP32 at the same cosine
(`benchmarks/latency.py`). Attention fusion stays off: the fused Attention op takes the Q/K/V weights as float
inputs, which would undo their INT8 MatMuls. A graph the optimizer changes numerically (more than float
reassociation on a validation batch) ships unfused."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FUSED_OPS = ("SkipLayerNormalization", "BiasGelu", "LayerNormalization", "FastGelu", "Gelu")
TOLERANCE = 1e-4  # of each output's largest magnitude


def fuse_transformer_subgraphs(path: Path, feeds: dict[str, np.ndarray]) -> list[str]:
    """Fuse in place where the optimizer finds a pattern and the outputs on `feeds` stay the same; the notes say
    what was fused (or why not)."""
    import onnx
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    from ..onnx_io import save
    from ..quiet_logs import quiet_loggers

    original = onnx.load(str(path))
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
    for a, b in zip(before, after, strict=True):
        if a.shape != b.shape or np.abs(a - b).max() > TOLERANCE * max(float(np.abs(a).max()), 1e-12):
            return ["transformer fusions skipped: the fused graph's outputs differ"]
    save(fused.model, path)
    return ["transformer fusions (onnxruntime's optimizer, attention off): "
            + ", ".join(f"{n} {op}" for op, n in sorted(counts.items()))]


def _run(model: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Outputs of `model` on sample-major `feeds`, through the project's one session wrapper."""
    from ..runtimes.ort_session import Session

    return [np.asarray(out, dtype=np.float64) for out in Session(model, what="the fused graph").run(None, feeds)]
