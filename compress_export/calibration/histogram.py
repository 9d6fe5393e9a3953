"""A per-tensor histogram of fixed size whose range grows by merging bins.

The range is [-R, R] with R a power of two, the smallest that holds every value seen.
Growing R doubles the bin width, which merges neighbouring bins exactly, so the result
depends only on the values seen, not on how they were batched: merging equals one shot.
"""

from __future__ import annotations

import math

import numpy as np


def _range_for(absmax: float) -> float:
    if absmax <= 0.0 or not math.isfinite(absmax):
        return 1.0 if absmax <= 0.0 else absmax
    return 2.0 ** math.ceil(math.log2(absmax))


class TensorHistogram:
    """Exact min/max plus `num_bins` bins on each side of zero over [-R, R]."""

    def __init__(self, num_bins: int = 2048):
        if num_bins < 2 or num_bins & (num_bins - 1):
            raise ValueError("num_bins must be a power of two >= 2")
        self.num_bins = num_bins
        self.counts = np.zeros(2 * num_bins, dtype=np.int64)
        self.limit = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.count = 0
        self.nonfinite = 0

    @property
    def bin_width(self) -> float:
        return self.limit / self.num_bins

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(-self.limit, self.limit, 2 * self.num_bins + 1)

    @property
    def centers(self) -> np.ndarray:
        edges = self.edges
        return (edges[:-1] + edges[1:]) / 2

    def abs_counts(self) -> np.ndarray:
        """Counts of |x| over [0, R]: the negative half folded onto the positive one."""
        return self.counts[self.num_bins :] + self.counts[: self.num_bins][::-1]

    def update(self, values: np.ndarray) -> None:
        flat = np.asarray(values, dtype=np.float32).ravel()
        if flat.size == 0:
            return
        lo, hi = float(flat.min()), float(flat.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):  # min/max propagate NaN and reach +-inf
            finite = np.isfinite(flat)
            self.nonfinite += int(flat.size - finite.sum())
            flat = flat[finite]
            if flat.size == 0:
                return
            lo, hi = float(flat.min()), float(flat.max())
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        self.count += flat.size
        self._grow_to(max(abs(lo), abs(hi)))
        # num_bins / limit is a power of two, so the float32 product is exact: no float64 copy needed.
        scaled = flat * np.float32(self.num_bins / self.limit)
        index = np.floor(scaled, out=scaled).astype(np.int32)
        index += self.num_bins
        np.clip(index, 0, 2 * self.num_bins - 1, out=index)
        self.counts += np.bincount(index, minlength=2 * self.num_bins)

    def _grow_to(self, absmax: float) -> None:
        target = _range_for(absmax)
        if self.limit == 0.0:
            self.limit = target
            return
        while self.limit < target:
            self._double()

    def _double(self) -> None:
        n = self.num_bins
        positive = self.counts[n:].reshape(-1, 2).sum(axis=1)
        negative = self.counts[:n].reshape(-1, 2).sum(axis=1)
        merged = np.zeros_like(self.counts)
        merged[n : n + n // 2] = positive
        merged[n // 2 : n] = negative
        self.counts = merged
        self.limit *= 2.0

    def merge(self, other: TensorHistogram) -> None:
        """Fold another histogram of the same tensor into this one."""
        if other.count == 0:
            return
        if other.num_bins != self.num_bins:
            raise ValueError("cannot merge histograms with different bin counts")
        other = other.copy()
        if self.count == 0:
            self.__dict__.update(other.__dict__)
            return
        while other.limit < self.limit:
            other._double()
        while self.limit < other.limit:
            self._double()
        self.counts += other.counts
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self.count += other.count
        self.nonfinite += other.nonfinite

    def copy(self) -> TensorHistogram:
        clone = TensorHistogram(self.num_bins)
        clone.__dict__.update({**self.__dict__, "counts": self.counts.copy()})
        return clone
