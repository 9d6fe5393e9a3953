"""Calibration statistics kept between runs: the histograms of one streaming pass depend on the FP32 graph, the data,
the tensors and the bin count, not on the calibrator or the target, so runs that share those (a fleet's recipes of
one model) collect them once. Files are plain arrays (no pickle), written whole or not at all, keyed by a digest of
everything the pass depends on, so a changed model or data set never reads another's statistics."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .histogram import TensorHistogram


def statistics_key(model_sha256: str, tensors: Sequence[str], data_fingerprint: str, num_bins: int) -> str:
    text = json.dumps({"model": model_sha256, "tensors": sorted(tensors), "data": data_fingerprint,
                       "bins": num_bins, "format": 1})
    return hashlib.sha256(text.encode()).hexdigest()


def load_statistics(folder: Path, key: str, tensors: Sequence[str]) -> dict[str, TensorHistogram] | None:
    """The histograms stored under `key`, or None (absent, unreadable or not for these tensors: computed again)."""
    path = Path(folder) / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as arrays:
            names = [str(name) for name in arrays["names"]]
            if sorted(names) != sorted(tensors):
                return None
            stats = {}
            for index, name in enumerate(names):
                hist = TensorHistogram(int(arrays["bins"]))
                hist.counts = arrays[f"counts_{index}"].astype(np.int64)
                scalars = arrays[f"scalars_{index}"]
                hist.limit, hist.min, hist.max = (float(value) for value in scalars[:3])
                hist.count, hist.nonfinite = int(scalars[3]), int(scalars[4])
                stats[name] = hist
            return stats
    except (OSError, KeyError, ValueError):
        return None


def save_statistics(folder: Path, key: str, stats: dict[str, TensorHistogram]) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(stats)
    arrays: dict[str, np.ndarray] = {"names": np.array(names, dtype=str),
                                     "bins": np.array(next(iter(stats.values())).num_bins if stats else 2)}
    for index, name in enumerate(names):
        hist = stats[name]
        arrays[f"counts_{index}"] = hist.counts
        # float64 holds min/max/limit exactly and counts up to 2**53 (beyond any calibration set)
        arrays[f"scalars_{index}"] = np.array([hist.limit, hist.min, hist.max, hist.count, hist.nonfinite],
                                              dtype=np.float64)
    partial = folder / f".{key}.{os.getpid()}.partial.npz"
    try:
        np.savez(partial, **arrays)
        os.replace(partial, folder / f"{key}.npz")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
