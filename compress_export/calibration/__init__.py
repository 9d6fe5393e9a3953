"""Calibration we own: one streaming pass of bounded memory, four range methods from it."""

from .histogram import TensorHistogram
from .methods import METHODS, compute_ranges

__all__ = ["METHODS", "TensorHistogram", "compute_ranges"]
