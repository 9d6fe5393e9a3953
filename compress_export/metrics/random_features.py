"""General image features for FID where no feature model fits the images: any size, 1 or 3 channels, offline.

Each channel is resized to 32x32 (a box filter down to at most twice that, then bilinear) and read by a fixed
random two-layer CNN (seed 0, He-normal weights: 16 then 32 3x3 filters with ReLU, 2x2 average pooling between);
the mean and standard deviation of each final map are its 64 features, so an RGB image has 192. Why random weights:
there is nothing to download or ship, every machine computes the same numbers, and random convolutions answer to
the local statistics (noise, texture, edges, contrast) that lower precision disturbs. The values compare runs of this
tool with each other; they are not the Inception FID of published papers."""

from __future__ import annotations

import functools

import numpy as np

SIDE = 32
CHUNK = 64  # images per pass: bounds the im2col memory (about 20 MB)
DESCRIPTION = (f"general features: each channel resized to {SIDE}x{SIDE} (box filter, then bilinear), a fixed random "
               "two-layer CNN (seed 0: 16 and 32 3x3 filters, ReLU), mean and std of each map (64 per channel)")


@functools.cache
def _weights() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    first = rng.normal(0.0, np.sqrt(2.0 / 9), (16, 1, 3, 3))
    second = rng.normal(0.0, np.sqrt(2.0 / (16 * 9)), (32, 16, 3, 3))
    return first, second


def random_features(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) images -> (N, 64 * C) features."""
    images = np.asarray(images, np.float64)
    if images.ndim != 4:
        raise ValueError(f"images must be (batch, channels, height, width), not {images.shape}")
    count, channels = images.shape[:2]
    planes = resize(images.reshape(count * channels, 1, *images.shape[2:]), SIDE)
    parts = [_read(planes[start:start + CHUNK]) for start in range(0, len(planes), CHUNK)]
    return np.concatenate(parts).reshape(count, -1)


def resize(planes: np.ndarray, side: int) -> np.ndarray:
    """(M, 1, H, W) -> (M, 1, side, side): box-averaged by the whole factor that keeps each side at least twice
    `side` (no aliasing from a large shrink), then bilinear (half-pixel centres)."""
    height, width = planes.shape[2:]
    fy, fx = max(height // (2 * side), 1), max(width // (2 * side), 1)
    if fy > 1 or fx > 1:
        h, w = height // fy * fy, width // fx * fx
        planes = planes[:, :, :h, :w].reshape(len(planes), 1, h // fy, fy, w // fx, fx).mean(axis=(3, 5))
    return _bilinear(_bilinear(planes, side, axis=2), side, axis=3)


def _bilinear(planes: np.ndarray, size: int, axis: int) -> np.ndarray:
    length = planes.shape[axis]
    position = np.clip((np.arange(size) + 0.5) * length / size - 0.5, 0, length - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, length - 1)
    weight = (position - low).reshape([-1 if i == axis else 1 for i in range(planes.ndim)])
    return np.take(planes, low, axis=axis) * (1 - weight) + np.take(planes, high, axis=axis) * weight


def _read(planes: np.ndarray) -> np.ndarray:
    first, second = _weights()
    hidden = np.maximum(_conv3x3(planes, first), 0.0)
    m, c, h, w = hidden.shape
    hidden = hidden.reshape(m, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    maps = np.maximum(_conv3x3(hidden, second), 0.0).reshape(m, second.shape[0], -1)
    return np.concatenate([maps.mean(axis=2), maps.std(axis=2)], axis=1)


def _conv3x3(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(M, C, H, W) * (F, C, 3, 3), zero padding 1 -> (M, F, H, W)."""
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # M, C, H, W, 3, 3
    return np.einsum("mchwij,fcij->mfhw", windows, weights, optimize=True)
