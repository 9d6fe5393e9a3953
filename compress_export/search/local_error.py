"""Ranking a graph with many quantized activations by each one's own rounding error, from one pass, instead of one
trial per tensor: on a 45 MB diffusion UNet with 389 of them, a trial each was 36 minutes on 2 cores. What a tensor
loses is read where it happens, in the quantized graph itself: its DequantizeLinear output against the float tensor
its QuantizeLinear read, in the same run (the error upstream pairs left in it is in both, so it cancels). The
relative error energy e estimates the output cosine floating the tensor wins as e / 2 (cos = 1 - e / 2 for small
noise that reaches the output unchanged); the trials that decide (the prefix, the way back to INT8) still run the
graph, so a wrong estimate costs trials, never a wrong artifact."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from ..exporters.onnx.qdq_rewrites import with_tensor_ranges
from ..graphs.onnx_io import session_with_outputs
from ..graphs.selection import input_casts
from ..metrics.layer_error import quantized_pairs

TRIAL_LIMIT = 150  # more quantized activations than this: ranked from one pass, not a trial each


def rank_by_local_error(evaluator, candidates: Sequence[str], baseline: dict,
                        ranges: Mapping[str, tuple[float, float]] | None = None) -> list[dict]:
    """Rows like rank_tensors' (best value first), with `local_error` and the gain estimated from it."""
    from .activations import order

    model = with_tensor_ranges(evaluator.quantized, ranges or {})
    pairs = quantize_pairs(model)
    run = session_with_outputs(model, sorted({name for pair in pairs.values() for name in pair}))
    energy = {name: [0.0, 0.0] for name in pairs}
    for feeds, _, _ in evaluator.rank_batches or evaluator.batches:
        count = len(next(iter(feeds.values())))
        for row in range(count):  # one sample a pass: the pass holds every paired tensor at once
            values = run({name: value[row:row + 1] for name, value in feeds.items()})
            for name, (before, after) in pairs.items():
                exact = np.asarray(values[before], np.float64)
                with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: judged below
                    energy[name][0] += float((exact**2).sum())
                    energy[name][1] += float(((np.asarray(values[after], np.float64) - exact) ** 2).sum())
    rows = []
    for name in candidates:
        signal, noise = energy.get(name, (0.0, 0.0))
        relative = noise / signal if signal > 0 else 0.0
        if not np.isfinite(relative):  # overflowed values (an FP16 tensor past its range): as bad as it gets
            relative = np.inf
        cost = evaluator.costs.get(name, {})
        rows.append({"tensor": name, "local_error": relative, "cosine_gain": relative / 2,
                     "cosine_if_float": baseline["cosine"] + relative / 2, "accuracy_drop_if_float": None,
                     "macs_share": cost.get("macs_share", 0.0), "float_compute": cost.get("nodes", [])})
    order(rows)
    return rows


def quantize_pairs(model: onnx.ModelProto) -> dict[str, tuple[str, str]]:
    """Activation name (as the float graph calls it) -> (the tensor its QuantizeLinear reads, the output of the
    DequantizeLinear after it)."""
    casts = input_casts(model)
    return {casts.get(read, read): (read, dequantized) for read, dequantized in quantized_pairs(model).items()}
