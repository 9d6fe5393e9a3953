"""Range methods computed from a TensorHistogram, without re-running the model.

Every method returns an asymmetric (lo, hi) that contains zero. Targets with symmetric
activations (TensorRT) use amax = max(|lo|, |hi|) of the same range.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..util.lazy import resolve
from .histogram import TensorHistogram

QUANT_LEVELS = 128
ENTROPY_START_BIN = 128
MSE_CANDIDATES = 200
_CHUNK = 64


def _contain_zero(lo: float, hi: float) -> tuple[float, float]:
    return min(lo, 0.0), max(hi, 0.0)


def _clip_to_threshold(hist: TensorHistogram, amax: float) -> tuple[float, float]:
    return _contain_zero(max(hist.min, -amax), min(hist.max, amax))


def minmax_range(hist: TensorHistogram, **_: float) -> tuple[float, float]:
    return _contain_zero(hist.min, hist.max)


def _quantile(counts: np.ndarray, edges: np.ndarray, q: float) -> float:
    """The value below which a fraction q of the histogram's mass lies (linear in a bin)."""
    cumulative = np.cumsum(counts, dtype=np.float64)
    target = q * cumulative[-1]
    index = int(np.searchsorted(cumulative, target, side="left"))
    index = min(index, len(counts) - 1)
    below = cumulative[index - 1] if index > 0 else 0.0
    inside = counts[index]
    fraction = (target - below) / inside if inside > 0 else 0.0
    return float(edges[index] + fraction * (edges[index + 1] - edges[index]))


def percentile_range(hist: TensorHistogram, percentile: float = 99.99, **_: float) -> tuple[float, float]:
    if not 50.0 < percentile <= 100.0:
        raise ValueError("percentile must be in (50, 100]")
    edges = hist.edges
    hi = min(_quantile(hist.counts, edges, percentile / 100.0), hist.max)
    lo = max(_quantile(hist.counts, edges, 1.0 - percentile / 100.0), hist.min)
    return _contain_zero(lo, hi)


def entropy_threshold(abs_counts: np.ndarray, bin_width: float) -> float:
    """TensorRT's entropy calibration: the |x| threshold whose 128-level quantization of the
    clipped distribution has the smallest KL divergence from it. Ties take the larger threshold.
    As in NVIDIA's pytorch-quantization, the zero bin takes its neighbour's count so that the
    zeros of a ReLU do not dominate the divergence."""
    bins = abs_counts.astype(np.float64)
    nonzero = np.flatnonzero(bins)
    if nonzero.size == 0:
        return 0.0
    stop = int(nonzero[-1]) + 1
    if stop <= ENTROPY_START_BIN:
        return stop * bin_width
    bins = bins[:stop].copy()
    bins[0] = bins[1]
    tail = np.concatenate([np.cumsum(bins[::-1])[::-1], [0.0]])  # tail[i] = sum(bins[i:])
    candidates = np.arange(ENTROPY_START_BIN, stop + 1)
    divergences = np.concatenate(
        [_kl_divergences(bins, tail, candidates[s : s + _CHUNK]) for s in range(0, len(candidates), _CHUNK)]
    )
    best = len(divergences) - 1 - int(np.argmin(divergences[::-1]))
    return float(candidates[best] * bin_width)


def _kl_divergences(bins: np.ndarray, tail: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """KL(P || Q) for each candidate size: P is bins[:size] with the tail folded into its last
    bin; Q merges bins[:size] into 128 levels, each spread over the bins P populates."""
    rows, width = len(sizes), int(sizes.max())
    column = np.arange(width)
    inside = column[None, :] < sizes[:, None]
    reference = np.where(inside, bins[None, :width], 0.0)
    reference[np.arange(rows), sizes - 1] += tail[sizes]
    populated = reference > 0

    flat_level = np.arange(rows)[:, None] * QUANT_LEVELS + (column[None, :] * QUANT_LEVELS) // sizes[:, None]
    mass = np.broadcast_to(bins[:width], inside.shape)
    level_mass = np.bincount(flat_level[inside], weights=mass[inside], minlength=rows * QUANT_LEVELS)
    level_population = np.bincount(flat_level[populated], minlength=rows * QUANT_LEVELS)
    spread = level_mass / np.maximum(level_population, 1)
    candidate = np.where(populated, spread[flat_level], 0.0)

    p = _smooth(reference, inside)
    q = _smooth(candidate, inside)
    p /= p.sum(axis=1, keepdims=True)
    q /= q.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(inside, p * np.log(p / q), 0.0)
    return terms.sum(axis=1)


def _smooth(counts: np.ndarray, inside: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Give empty bins a small mass taken evenly from the others, so that KL stays finite."""
    empty = inside & (counts == 0)
    filled = inside & (counts != 0)
    share = eps * empty.sum(axis=1, keepdims=True) / np.maximum(filled.sum(axis=1, keepdims=True), 1)
    return np.where(empty, eps, np.where(filled, counts - share, 0.0))


def entropy_range(hist: TensorHistogram, **_: float) -> tuple[float, float]:
    return _clip_to_threshold(hist, entropy_threshold(hist.abs_counts(), hist.bin_width))


def mse_range(hist: TensorHistogram, **_: float) -> tuple[float, float]:
    """The clipping threshold whose UINT8 quantization grid minimises the expected squared error."""
    amax = max(abs(hist.min), abs(hist.max))
    if amax == 0.0:
        return 0.0, 0.0
    thresholds = amax * np.linspace(1.0 / MSE_CANDIDATES, 1.0, MSE_CANDIDATES)
    lo = np.minimum(np.maximum(hist.min, -thresholds), 0.0)
    hi = np.maximum(np.minimum(hist.max, thresholds), 0.0)
    scale = np.maximum(hi - lo, 1e-30) / 255.0
    zero_point = np.round(-lo / scale)
    centers, counts = hist.centers, hist.counts.astype(np.float64)
    used = counts > 0
    centers, counts = centers[used], counts[used]
    quantized = np.clip(np.round(centers[None, :] / scale[:, None]) + zero_point[:, None], 0, 255)
    restored = (quantized - zero_point[:, None]) * scale[:, None]
    errors = ((restored - centers[None, :]) ** 2 * counts[None, :]).sum(axis=1)
    best = int(np.argmin(errors))
    return float(lo[best]), float(hi[best])


# The calibrator registry, the one place their names live (`--calibrator` offers these, the budget search tries each):
# a new calibrator is a module with a function of a TensorHistogram (and **settings such as percentile) returning a
# (lo, hi) range that contains zero, plus one line here.
CALIBRATORS: dict[str, str] = {
    "minmax": f"{__name__}:minmax_range",
    "percentile": f"{__name__}:percentile_range",
    "entropy": f"{__name__}:entropy_range",
    "mse": f"{__name__}:mse_range",
}


def compute_ranges(
    stats: Mapping[str, TensorHistogram], method: str, percentile: float = 99.99
) -> dict[str, tuple[float, float]]:
    try:
        compute: Callable[..., tuple[float, float]] = resolve(CALIBRATORS[method])
    except KeyError:
        raise ValueError(f"unknown calibrator {method!r}; choose from {', '.join(CALIBRATORS)}") from None
    return {name: compute(hist, percentile=percentile) for name, hist in stats.items() if hist.count > 0}
