import numpy as np
import pytest

from compress_export.calibration.histogram import TensorHistogram
from compress_export.calibration.methods import entropy_threshold, minmax_range, mse_range, percentile_range


def _hist(values, bins=2048):
    hist = TensorHistogram(bins)
    hist.update(np.asarray(values, dtype=np.float32))
    return hist


@pytest.mark.parametrize(
    "sampler",
    [
        lambda rng: rng.normal(0.5, 2.0, 400_000),
        lambda rng: rng.uniform(-3.0, 1.0, 400_000),
        lambda rng: rng.exponential(1.5, 400_000),
        lambda rng: rng.laplace(0.0, 1.0, 400_000),
    ],
)
@pytest.mark.parametrize("percentile", [99.0, 99.9, 99.99])
def test_percentile_matches_numpy(sampler, percentile):
    values = sampler(np.random.default_rng(0)).astype(np.float32)
    hist = _hist(values)
    lo, hi = percentile_range(hist, percentile=percentile)
    want_lo, want_hi = np.percentile(values, [100 - percentile, percentile])
    tolerance = 2 * hist.bin_width
    assert hi == pytest.approx(max(want_hi, 0.0), abs=tolerance)
    assert lo == pytest.approx(min(want_lo, 0.0), abs=tolerance)


def test_minmax_is_exact_and_contains_zero():
    assert minmax_range(_hist([0.5, 2.0, 3.25])) == (0.0, 3.25)
    assert minmax_range(_hist([-4.0, -1.0])) == (-4.0, 0.0)


def _reference_entropy(bins: np.ndarray, width: float, levels=128, start=128) -> float:
    """A direct loop over the TensorRT / MXNet description, for checking the vectorised version."""
    bins = bins.astype(np.float64).copy()
    stop = int(np.flatnonzero(bins)[-1]) + 1
    bins = bins[:stop]
    bins[0] = bins[1]
    best, best_i = np.inf, start
    for i in range(start, stop + 1):
        p = bins[:i].copy()
        p[i - 1] += bins[i:].sum()
        q = np.zeros(i)
        level = (np.arange(i) * levels) // i
        for lv in range(levels):
            members = np.flatnonzero(level == lv)
            populated = members[p[members] > 0]
            if populated.size:
                q[populated] = bins[members].sum() / populated.size

        def smooth(x):
            zeros, nonzeros = x == 0, x != 0
            out = x.copy()
            out[zeros] = 1e-4
            out[nonzeros] -= 1e-4 * zeros.sum() / max(nonzeros.sum(), 1)
            return out

        p, q = smooth(p), smooth(q)
        p, q = p / p.sum(), q / q.sum()
        divergence = float(np.sum(p * np.log(p / q)))
        if divergence <= best:
            best, best_i = divergence, i
    return best_i * width


@pytest.mark.parametrize("seed", [0, 1])
def test_entropy_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    values = np.abs(np.concatenate([rng.normal(0, 1, 200_000), rng.normal(0, 1, 50) * 9]))
    hist = _hist(values, bins=512)
    fast = entropy_threshold(hist.abs_counts(), hist.bin_width)
    slow = _reference_entropy(hist.abs_counts(), hist.bin_width)
    assert fast == pytest.approx(slow)


def test_entropy_clips_outliers_of_a_gaussian():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, 1_000_000).astype(np.float32)
    values[:20] = rng.choice([-1, 1], 20) * 12.0  # outliers at 12 sigma
    hist = _hist(values)
    threshold = entropy_threshold(hist.abs_counts(), hist.bin_width)
    assert 3.0 < threshold < 7.0
    assert np.mean(np.abs(values) <= threshold) > 0.999


def test_entropy_keeps_the_full_range_of_a_narrow_distribution():
    values = np.linspace(-1, 1, 10_001, dtype=np.float32)
    hist = _hist(values)
    assert entropy_threshold(hist.abs_counts(), hist.bin_width) == pytest.approx(1.0, abs=2 * hist.bin_width)


def test_mse_matches_brute_force_on_samples():
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.laplace(0, 1, 100_000), [40.0, -35.0]]).astype(np.float32)
    hist = _hist(values)
    lo, hi = mse_range(hist)

    def error(lo, hi):
        scale = (hi - lo) / 255.0
        zero = np.round(-lo / scale)
        q = np.clip(np.round(values / scale) + zero, 0, 255)
        return float(np.mean(((q - zero) * scale - values) ** 2))

    amax = 40.0
    brute = min(error(max(-t, values.min()), min(t, values.max())) for t in amax * np.linspace(0.005, 1, 200))
    assert hi < 40.0 and lo > -35.0  # clips the two outliers
    assert error(lo, hi) <= brute * 1.05
