"""Learned rounding of weights against calibration activations (GPTQ, Frantar et al. 2022): columns are
rounded one at a time and the error each leaves is spread over the columns not yet rounded, weighted by the
inverse Hessian of the layer's inputs, so the layer's output on real inputs moves less than under nearest
rounding. Each channel's largest magnitude stays where it is, so the quantizer's grid does not change."""

from __future__ import annotations

import numpy as np

from .layers import QMAX, WeightLayer, grid_scale
from .statistics import LayerInputs

DAMPING = 0.01  # of the Hessian's mean diagonal: keeps it invertible where inputs are collinear
BLOCK = 128


def gptq_levels(matrix: np.ndarray, hessian: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Integer levels of a [out, in] matrix on the grid `scale` [out, 1]; columns in order of decreasing
    Hessian diagonal (the inputs that matter most are rounded while the most columns can absorb their error)."""
    weights = matrix.astype(np.float64).copy()
    hessian = hessian.copy()
    dead = np.diag(hessian) == 0
    hessian[dead, dead] = 1.0
    order = np.argsort(-np.diag(hessian), kind="stable")
    weights, hessian = weights[:, order], hessian[np.ix_(order, order)]
    free = ~_pinned(weights, scale)
    hessian[np.diag_indices_from(hessian)] += DAMPING * np.mean(np.diag(hessian))
    inverse = _upper_inverse_cholesky(hessian)
    levels = np.zeros_like(weights)
    columns = weights.shape[1]
    for start in range(0, columns, BLOCK):
        stop = min(start + BLOCK, columns)
        block, errors = weights[:, start:stop].copy(), np.zeros((weights.shape[0], stop - start))
        for offset in range(stop - start):
            column = block[:, offset]
            level = np.clip(np.round(column / scale[:, 0]), -QMAX, QMAX)
            levels[:, start + offset] = level
            error = (column - level * scale[:, 0]) / inverse[start + offset, start + offset]
            at = start + offset
            block[:, offset:] -= np.outer(error, inverse[at, at:stop]) * free[:, at:stop]
            errors[:, offset] = error
        weights[:, stop:] -= (errors @ inverse[start:stop, stop:]) * free[:, stop:]
    restored = np.empty_like(levels)
    restored[:, order] = levels
    return restored


def _pinned(weights: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The entries that set each row's scale: they must round to +-127 exactly."""
    return np.abs(weights) >= scale * QMAX * (1 - 1e-6)


def _upper_inverse_cholesky(hessian: np.ndarray) -> np.ndarray:
    for extra in (0.0, 0.1, 1.0):
        try:
            damped = hessian + extra * np.mean(np.diag(hessian)) * np.eye(len(hessian))
            return np.linalg.cholesky(np.linalg.inv(damped)).T
        except np.linalg.LinAlgError:
            continue
    return np.diag(1 / np.sqrt(np.diag(hessian)))


def rounded_weights(layer: WeightLayer, weight: np.ndarray, inputs: LayerInputs, per_channel: bool) -> np.ndarray:
    """The layer's weight in its own layout, every value on the quantizer's grid."""
    matrix = layer.as_matrix(weight).astype(np.float64)
    scale = grid_scale(matrix, per_channel)
    rows_per_group = matrix.shape[0] // inputs.groups
    levels = np.concatenate([
        gptq_levels(matrix[g * rows_per_group:(g + 1) * rows_per_group], inputs.hessian(g),
                    scale[g * rows_per_group:(g + 1) * rows_per_group]) for g in range(inputs.groups)])
    return layer.from_matrix((levels * scale).astype(np.float32), weight.shape)
