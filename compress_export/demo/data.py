"""Digits as `.npz`: the split the demo weights were not trained on, made at run time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 0
TRAIN_FRACTION = 0.6


def digits_split() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train', 'calib', 'val'}: images (N, 1, 8, 8) float32 in [0, 1] and int64 labels."""
    from ..errors import require

    datasets = require("sklearn.datasets", "demo")
    digits = datasets.load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(labels))
    train_end = int(len(order) * TRAIN_FRACTION)
    rest = order[train_end:]
    middle = len(rest) // 2
    parts = {"train": order[:train_end], "calib": rest[:middle], "val": rest[middle:]}
    return {name: (images[index], labels[index]) for name, index in parts.items()}


def write_demo_data(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    split = digits_split()
    paths = []
    for name in ("calib", "val"):
        images, labels = split[name]
        path = folder / f"digits_{name}.npz"
        np.savez(path, image=images, label=labels)
        paths.append(path)
    return paths[0], paths[1]
