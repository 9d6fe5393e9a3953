import numpy as np
import pytest

from compress_export.calibration.histogram import TensorHistogram


def _values(seed=0, size=50_000):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, size), rng.normal(0, 40, size // 100)]).astype(np.float32)


@pytest.mark.parametrize("chunks", [2, 7, 31])
def test_merged_batches_equal_one_shot_histogram(chunks):
    values = _values()
    values = values[np.argsort(np.abs(values))]  # batches of growing magnitude make the range grow
    one_shot = TensorHistogram(1024)
    one_shot.update(values)
    streamed = TensorHistogram(1024)
    for part in np.array_split(values, chunks):
        streamed.update(part)
    assert streamed.limit == one_shot.limit
    np.testing.assert_array_equal(streamed.counts, one_shot.counts)


def test_merging_two_histograms_equals_one_shot():
    values = _values(1)
    small, large = values[np.abs(values) < 2], values[np.abs(values) >= 2]
    left, right, whole = TensorHistogram(512), TensorHistogram(512), TensorHistogram(512)
    left.update(small)
    right.update(large)
    whole.update(values)
    left.merge(right)
    np.testing.assert_array_equal(left.counts, whole.counts)
    assert (left.min, left.max, left.count) == (whole.min, whole.max, whole.count)


def test_histogram_matches_numpy_histogram_over_its_edges():
    values = _values(2)
    hist = TensorHistogram(256)
    hist.update(values)
    expected, _ = np.histogram(values.astype(np.float64), bins=hist.edges)
    assert abs(int(expected.sum()) - int(hist.counts.sum())) == 0
    # np.histogram's last bin is closed; ours clips the maximum into it too.
    np.testing.assert_array_equal(hist.counts, expected)


def test_min_max_are_exact_and_memory_is_fixed():
    hist = TensorHistogram(2048)
    rng = np.random.default_rng(3)
    for _ in range(20):
        hist.update(rng.normal(size=10_000).astype(np.float32) * 3)
    size = hist.counts.nbytes
    hist.update(np.array([-1234.5, 987.25], dtype=np.float32))
    assert hist.min == -1234.5 and hist.max == 987.25
    assert hist.counts.nbytes == size == 2 * 2048 * 8
    assert hist.count == 200_002


def test_non_finite_values_are_counted_not_binned():
    hist = TensorHistogram(64)
    hist.update(np.array([1.0, np.inf, -np.inf, np.nan, -2.0], dtype=np.float32))
    assert hist.nonfinite == 3
    assert hist.count == 2
    assert (hist.min, hist.max) == (-2.0, 1.0)


def test_abs_counts_fold_the_negative_half():
    hist = TensorHistogram(8)
    hist.update(np.array([-0.9, 0.9, -0.1, 0.1, 0.5], dtype=np.float32))
    folded = hist.abs_counts()
    assert folded.sum() == 5
    assert folded[-1] == 2 and folded[0] == 2
