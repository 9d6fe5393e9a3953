"""A layer's input as the rows its weight matrix multiplies: Conv patches (im2col, per group) or the
activation's last axis, so `x_rows @ matrix.T` is the layer's output without bias."""

from __future__ import annotations

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view


def conv_attributes(node: onnx.NodeProto, kernel: tuple[int, int], spatial: tuple[int, int]) -> dict:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    strides = list(attrs.get("strides", [1, 1]))
    dilations = list(attrs.get("dilations", [1, 1]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for axis in range(2):
            out = -(-spatial[axis] // strides[axis])
            total = max(0, (out - 1) * strides[axis] + (kernel[axis] - 1) * dilations[axis] + 1 - spatial[axis])
            small, large = total // 2, total - total // 2
            pads[axis], pads[axis + 2] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    return {"strides": strides, "dilations": dilations, "pads": pads, "group": int(attrs.get("group", 1))}


def conv_patches(x: np.ndarray, node: onnx.NodeProto, kernel: tuple[int, int], limit: int,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Per group: at most `limit` output positions' input patches, [rows, C/g*kh*kw] in the order of the
    weight's flattened [C/g, kh, kw]. Positions are drawn before any patch is copied."""
    attrs = conv_attributes(node, kernel, x.shape[2:])
    top, left, bottom, right = attrs["pads"]
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    (dh, dw), (sh, sw) = attrs["dilations"], attrs["strides"]
    span = ((kernel[0] - 1) * dh + 1, (kernel[1] - 1) * dw + 1)
    windows = sliding_window_view(padded, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    n, channels, oh, ow = windows.shape[:4]
    positions = np.arange(n * oh * ow)
    if len(positions) > limit:
        positions = np.sort(rng.choice(len(positions), limit, replace=False))
    batch, rest = np.divmod(positions, oh * ow)
    rows = windows[batch, :, rest // ow, rest % ow].reshape(len(positions), channels, -1)
    per_group = channels // attrs["group"]
    return [rows[:, g * per_group:(g + 1) * per_group].reshape(len(rows), -1) for g in range(attrs["group"])]


def matmul_rows(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1, x.shape[-1])


def sample_rows(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most `limit` rows, drawn without replacement: statistics of a large layer without its full cost."""
    if len(rows) <= limit:
        return rows
    return rows[np.sort(rng.choice(len(rows), limit, replace=False))]
