"""GPTQ rounding (Frantar et al., 2022) into MatMulNBits' symmetric 4-bit layout: each weight column is rounded in
turn and its rounding error, weighted by the inverse Hessian of the layer's inputs (H = XᵀX over calibration
tokens), is pushed onto the columns not yet rounded, so the layer's output on real inputs moves far less than with
round-to-nearest. Per block of BLOCK_SIZE inputs the scale is the one of a few candidates with the smallest
H-weighted error. The codes and scales are written into the MatMulNBits node onnxruntime's quantizer made, so the
kernel (no zero points: implicit 8) and its speed stay those of plain 4-bit.

Owned rather than onnxruntime's vendored GPTQ (`GPTQWeightOnlyQuantConfig`): that one re-derives each block's scale
from the already-rounded weights (a second rounding that rescales whole blocks by up to 16/15), quantizes every
MatMul with no way to keep some at 8 bits, and its MSE scale search compares codes with weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVELS = 16  # 4-bit codes 0..15 around the implicit zero point 8
ZERO = 8
COLUMNS_PER_STEP = 128  # lazy batch updates: the error of this many columns reaches the rest in one product
DAMPING = 0.01  # of the mean Hessian diagonal
SCALE_DIVISORS = np.linspace(7.0, 10.0, 13)  # candidate scales: block |max| / divisor


class NotPositiveDefinite(RuntimeError):
    """The damped Hessian has no Cholesky factor: the matrix keeps round-to-nearest."""


@dataclass
class Int4Weight:
    codes: np.ndarray  # [N, K padded] uint8, 0..15
    scales: np.ndarray  # [N, blocks] float32
    k: int  # rows of the original [K, N] weight

    def dequantized(self) -> np.ndarray:
        """The [K, N] float weight the kernel computes with."""
        blocks = self.scales.shape[1]
        values = (self.codes.astype(np.float32) - ZERO).reshape(len(self.codes), blocks, -1) * self.scales[..., None]
        return values.reshape(len(self.codes), -1)[:, : self.k].T

    def columns(self, first: int, stop: int) -> Int4Weight:
        """The codes and scales of output columns first..stop (GPTQ rounds each column on its own)."""
        return Int4Weight(self.codes[first:stop], self.scales[first:stop], self.k)

    def packed(self) -> np.ndarray:
        """MatMulNBits' B: [N, blocks, block/2] uint8, two codes a byte, the even index in the low nibble."""
        n, padded = self.codes.shape
        pairs = self.codes.reshape(n, padded // 2, 2)
        return (pairs[..., 0] | (pairs[..., 1] << 4)).astype(np.uint8).reshape(n, self.scales.shape[1], -1)


def gptq(weight: np.ndarray, hessian: np.ndarray, block: int, act_order: bool = True) -> Int4Weight:
    """`weight` [K, N] as a MatMul reads it; `hessian` [K, K] = XᵀX of its inputs. With `act_order` the columns
    are rounded in order of decreasing input energy (the most important first, while the most columns remain to
    absorb their error), each block's scale fixed beforehand from the original weights ("static groups"), since
    the blocks stay contiguous along K for the kernel."""
    import torch

    k, n = weight.shape
    padded = -(-k // block) * block
    w = torch.zeros((n, padded), dtype=torch.float32)
    w[:, :k] = torch.from_numpy(np.ascontiguousarray(weight.T, dtype=np.float32))
    h = torch.zeros((padded, padded), dtype=torch.float64)
    h[:k, :k] = torch.from_numpy(np.asarray(hessian, dtype=np.float64))
    dead = torch.diagonal(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    importance = torch.diagonal(h).clone().float()
    scales = torch.zeros((n, padded // block), dtype=torch.float32)
    if act_order:
        for first in range(0, padded, block):
            scales[:, first // block] = _best_scale(w[:, first:first + block], importance[first:first + block])
        order = torch.argsort(importance, descending=True, stable=True)
    else:
        order = torch.arange(padded)
    w, h = w[:, order], h[order][:, order]
    h += DAMPING * torch.diagonal(h).mean() * torch.eye(padded, dtype=torch.float64)
    inverse = _upper_inverse_factor(h).float()

    codes = torch.zeros((n, padded), dtype=torch.uint8)
    for start in range(0, padded, COLUMNS_PER_STEP):
        stop = min(start + COLUMNS_PER_STEP, padded)
        part = w[:, start:stop].clone()
        errors = torch.zeros_like(part)
        factor = inverse[start:stop, start:stop]
        for i in range(stop - start):
            column = int(order[start + i])
            if not act_order and column % block == 0:  # dynamic groups: the scale from the updated weights
                width = min(block, stop - start - i)
                scales[:, column // block] = _best_scale(part[:, i:i + width], importance[column:column + width])
            scale = scales[:, column // block]
            code = torch.clamp(torch.round(part[:, i] / scale) + ZERO, 0, LEVELS - 1)
            codes[:, column] = code.to(torch.uint8)
            error = (part[:, i] - (code - ZERO) * scale) / factor[i, i]
            part[:, i:] -= error[:, None] * factor[i, i:][None, :]
            errors[:, i] = error
        w[:, stop:] -= errors @ inverse[start:stop, stop:]
    return Int4Weight(codes.numpy(), scales.numpy(), k)


def _upper_inverse_factor(h):
    """The upper Cholesky factor of H⁻¹ (GPTQ's sequential update weights); more damping if H is not positive
    definite in float64."""
    import torch

    eye = torch.eye(len(h), dtype=h.dtype)
    extra = 0.0
    for _ in range(6):
        try:
            lower = torch.linalg.cholesky(h + extra * eye)
            return torch.linalg.cholesky(torch.cholesky_inverse(lower), upper=True)
        except RuntimeError:
            extra = max(extra * 10, 1e-6 * float(torch.diagonal(h).mean()))
    raise NotPositiveDefinite("the calibration Hessian is not positive definite")


def _best_scale(columns, importance):
    """Per row, the scale among SCALE_DIVISORS whose rounding of `columns` [N, w] has the least error weighted by
    the inputs' mean square (`importance` [w])."""
    import torch

    top = columns.abs().amax(dim=1)
    top = torch.where(top > 0, top, torch.ones_like(top))
    best, chosen = None, None
    for divisor in SCALE_DIVISORS:
        scale = top / float(divisor)
        rounded = (torch.clamp(torch.round(columns / scale[:, None]), -ZERO, LEVELS - 1 - ZERO)) * scale[:, None]
        error = ((rounded - columns) ** 2 * importance[None, :]).sum(dim=1)
        if best is None:
            best, chosen = error, scale.clone()
        else:
            better = error < best
            best = torch.where(better, error, best)
            chosen = torch.where(better, scale, chosen)
    return chosen
