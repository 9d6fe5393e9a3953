"""One streaming pass over the FP32 ONNX graph in onnxruntime, histogramming chosen tensors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..data.calibration_data import CalibrationData, batch_rows
from .histogram import TensorHistogram
from .tensor_stream import stream_tensors

# Beyond this magnitude a tensor carries masking constants (-3.4e38, -1e9), not signal:
# an 8-bit grid spanning it would flatten every real value to zero.
HUGE_MAGNITUDE = 1e8


def collect(
    model_path: Path,
    tensors: Sequence[str],
    data: CalibrationData,
    num_bins: int = 2048,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, TensorHistogram]:
    """Run every batch once and fold each tensor into its histogram; nothing else is kept."""
    stats = {name: TensorHistogram(num_bins) for name in tensors}

    def fold(values: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> None:
        for name, value in values.items():
            if np.issubdtype(value.dtype, np.floating):
                stats[name].update(value)
        if on_batch:
            on_batch(batch_rows(feeds))

    stream_tensors(model_path, tensors, data, fold)
    return stats


def unquantizable(stats: dict[str, TensorHistogram]) -> dict[str, str]:
    """Tensors that must stay in float, with the reason."""
    reasons = {}
    for name, hist in stats.items():
        if hist.nonfinite:
            reasons[name] = f"holds {hist.nonfinite} non-finite values (a mask)"
        elif hist.count and max(abs(hist.min), abs(hist.max)) > HUGE_MAGNITUDE:
            reasons[name] = f"holds huge constants (range {hist.min:.3g}..{hist.max:.3g}, likely a mask)"
        elif hist.count == 0:
            reasons[name] = "not float, or never produced"
    return reasons
