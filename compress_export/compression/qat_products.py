"""Fake-quant for products of two activations (attention's Q·Kᵀ and probabilities·V): they are `torch.matmul`
calls (or `@`), not modules, so QAT intercepts the calls themselves while the student runs. Each call of a forward
is known by its place in the sequence of such calls; its two operands are matched by value against the FP32 ONNX
graph's tensors, as module inputs are, and an operand with a calibrated range is fake-quantized there with a
learnable range shared with every other reader of that tensor."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np


def _is_activation(value) -> bool:
    import torch

    return isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter) and value.dim() >= 2


@contextlib.contextmanager
def intercept_products(on_call: Callable):
    """Within the block every torch.matmul / `@` of two activations goes through `on_call(index, a, b)`, which
    returns the operands to multiply; `index` counts such calls from 0."""
    import torch

    matmul, dunder = torch.matmul, torch.Tensor.__matmul__
    count = [0]

    def product(a, b, *args, **kwargs):
        if _is_activation(a) and _is_activation(b) and not args and not kwargs:
            index = count[0]
            count[0] += 1
            a, b = on_call(index, a, b)
        return matmul(a, b, *args, **kwargs)

    torch.matmul = product
    torch.Tensor.__matmul__ = lambda a, b: product(a, b)
    try:
        yield
    finally:
        torch.matmul, torch.Tensor.__matmul__ = matmul, dunder


def product_key(index: int, operand: int) -> str:
    """The name of an activation product's operand among QAT's quantization points."""
    return f"@{index}.{operand}"


def split_product_key(key: str) -> tuple[int, int] | None:
    if not key.startswith("@"):
        return None
    index, operand = key[1:].split(".")
    return int(index), int(operand)


def find_tensor(value: np.ndarray, values: dict[str, np.ndarray], tolerance: float) -> str | None:
    """The first tensor of `values` that holds `value` (same shape, max difference within `tolerance` of its
    magnitude)."""
    scale = float(np.abs(value).max()) or 1.0
    for tensor, candidate in values.items():
        if candidate.shape == value.shape and float(np.abs(candidate - value).max()) <= tolerance * scale:
            return tensor
    return None
