"""Rewrites of the FP32 working graph that keep its function and leave fewer float operations between the integer
kernels of its INT8 forms. Each is kept only when the rewritten graph gives the same outputs as the graph before it
on sample inputs (within FP32 rounding); otherwise it is undone and the report says why."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

from ..graphs.activation_fusion import fuse_hard_activations
from ..graphs.affine_folding import fold_affine

# (what the report calls it, the rewrite: in place, returns how many places it changed)
REWRITES: tuple[tuple[str, Callable[[onnx.ModelProto], int]], ...] = (
    ("constant Mul/Add folded into the adjacent Conv", fold_affine),
    ("decomposed hard-swish/hard-sigmoid as HardSwish/HardSigmoid", fuse_hard_activations),
)
MIN_COSINE = 0.99999
MAX_RELATIVE_ERROR = 1e-4  # of the output's largest magnitude: FP32 rounding of a reordered product


def rewrite_graph(model: onnx.ModelProto, feeds: dict[str, np.ndarray] | None) -> tuple[onnx.ModelProto, list[str]]:
    """The model with every rewrite that keeps its outputs, and a note per rewrite that changed something."""
    if not feeds:
        return model, []
    notes = []
    before = _outputs(model, feeds)
    for label, rewrite in REWRITES:
        candidate = onnx.ModelProto()
        candidate.CopyFrom(model)
        try:
            changed = rewrite(candidate)
        except Exception as exc:  # a graph shape the matcher did not foresee: the graph stays as it was
            notes.append(f"{label}: skipped ({type(exc).__name__}: {str(exc)[:120]})")
            continue
        if not changed:
            continue
        after = _outputs(candidate, feeds)
        drift = _drift(before, after)
        if drift is None:
            model, before = candidate, after
            notes.append(f"{label}: {changed} place(s), outputs unchanged within FP32 rounding")
        else:
            notes.append(f"{label}: undone, it changed the outputs ({drift})")
    return model, notes


def _outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray] | None:
    from ..graphs.onnx_io import session
    from ..runtimes.onnxruntime import session_options

    try:
        run = session(model, session_options())
        names = [output.name for output in run.get_outputs()]
        inputs = {value.name for value in run.get_inputs()}
        return run.run(names, {name: value for name, value in feeds.items() if name in inputs})
    except Exception:  # a graph onnxruntime cannot run: no rewrite can be checked against it
        return None


def _drift(before: list | None, after: list | None) -> str | None:
    """None when `after` computes what `before` did; else what differs."""
    if before is None or after is None or len(before) != len(after):
        return "the rewritten graph does not run"
    for old, new in zip(before, after, strict=True):
        old, new = np.asarray(old), np.asarray(new)
        if old.shape != new.shape:
            return f"an output's shape {old.shape} became {new.shape}"
        if not np.issubdtype(old.dtype, np.floating):
            if not np.array_equal(old, new):
                return "an integer output changed"
            continue
        a, b = old.astype(np.float64).ravel(), new.astype(np.float64).ravel()
        scale = float(np.max(np.abs(a))) if a.size else 0.0
        error = float(np.max(np.abs(a - b))) if a.size else 0.0
        norms = float(np.linalg.norm(a) * np.linalg.norm(b))
        cosine = float(a @ b / norms) if norms else 1.0
        if error > MAX_RELATIVE_ERROR * max(scale, 1e-6) or cosine < MIN_COSINE:
            return f"max abs error {error:.3g} against a largest value of {scale:.3g}, cosine {cosine:.6f}"
        if not np.all(np.isfinite(b) == np.isfinite(a)):
            return "an output became non-finite"
    return None
