"""One streaming pass over the FP32 ONNX graph in onnxruntime, histogramming chosen tensors."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx

from ..data.calibration_data import CalibrationData, batch_rows
from ..graphs.onnx_io import save
from ..runtimes.ort_session import Session
from .histogram import TensorHistogram

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
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    existing = {output.name for output in model.graph.output}
    for name in tensors:
        if name not in existing:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    stats = {name: TensorHistogram(num_bins) for name in tensors}
    with tempfile.TemporaryDirectory(prefix="ce-calib-") as tmp:
        augmented = Path(tmp) / "augmented.onnx"
        save(model, augmented)
        del model
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        session = Session(str(augmented), options, "the model during calibration")
        names = list(tensors)
        for feeds in data.batches():
            for name, value in zip(names, session.run(names, feeds), strict=True):
                if np.issubdtype(value.dtype, np.floating):
                    stats[name].update(value)
            if on_batch:
                on_batch(batch_rows(feeds))
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
