"""A calibrator that this module alone adds to the tool: a function of the histograms and one registration line.
Half the min/max range, so a test can tell its ranges from every built-in calibrator's."""

from __future__ import annotations

from compress_export.calibration.histogram import TensorHistogram
from compress_export.calibration.methods import CALIBRATORS, minmax_range


def half_range(hist: TensorHistogram, **_: float) -> tuple[float, float]:
    lo, hi = minmax_range(hist)
    return lo / 2, hi / 2


CALIBRATORS["half"] = f"{__name__}:half_range"
