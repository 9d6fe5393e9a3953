"""Labels in the data files: class ids (1-D integers, or integral floats) or one-hot rows, checked before
any accuracy is computed from them, so that misread labels never report a pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError


def check_labels(file: Path, labels: np.ndarray) -> bool:
    """Raise on labels that are not class ids or one-hot rows; True when they are one-hot."""
    if _one_hot(labels):
        return True
    if not _class_ids(labels):
        raise UsageError(f"{file}: 'label' must hold class ids (1-D integers) or one-hot rows, not {labels.dtype} "
                         f"of shape {labels.shape}")
    if labels.size and labels.min() < 0:
        raise UsageError(f"{file}: 'label' holds negative class ids ({labels.min():g})")
    return False


def _class_ids(labels: np.ndarray) -> bool:
    if labels.ndim != 1 or labels.dtype.kind not in "iuf":
        return False
    return labels.dtype.kind != "f" or bool(np.isfinite(labels).all() and (labels == np.round(labels)).all())


def _one_hot(labels: np.ndarray) -> bool:
    if labels.ndim != 2 or labels.shape[1] < 2 or labels.dtype.kind not in "iuf":
        return False
    return bool(((labels == 0) | (labels == 1)).all() and (labels.sum(axis=1) == 1).all())


def class_ids(labels: np.ndarray) -> np.ndarray:
    return (labels.argmax(axis=1) if labels.ndim == 2 else labels).astype(np.int64)
