"""SSIM of each image against the FP32 generator's image from the same inputs (Wang et al. 2004: an 11-tap Gaussian
window of sigma 1.5, K1 0.01, K2 0.03, the reference image's max - min as the data range, statistics over the
window's valid positions, channels averaged): the mean over images, and the worst. Smaller images take the largest
odd window that fits, its sigma scaled alike."""

from __future__ import annotations

from .base import Gate
from .paired_images import PairedImageMetric

WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


def image_ssim(reference, candidate):
    """Per image (axis 0) SSIM of (N, C, H, W) arrays."""
    import numpy as np

    x, y = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    side = min(WINDOW, *x.shape[2:])
    side -= 1 - side % 2
    taps = np.exp(-0.5 * ((np.arange(side) - side // 2) / (SIGMA * side / WINDOW)) ** 2)
    taps /= taps.sum()

    def blur(values):
        for axis in (2, 3):
            values = np.lib.stride_tricks.sliding_window_view(values, side, axis=axis) @ taps
        return values

    peak = x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3))
    peak = np.where(peak > 0, peak, 1.0).reshape(-1, 1, 1, 1)
    c1, c2 = (K1 * peak) ** 2, (K2 * peak) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return index.mean(axis=(1, 2, 3))


class Ssim(PairedImageMetric):
    name = "ssim"
    gate = Gate("min_ssim", 0.95, "Gate (image generators): smallest accepted mean SSIM of the images against the FP32 "
                "generator's from the same inputs.", higher_is_better=True, score_key="ssim", low=-1.0, high=1.0)
    key = "ssim"
    label = "SSIM vs FP32 images"
    ideal = 1.0

    def per_image(self, reference, candidate):
        return image_ssim(reference, candidate)


METRIC = Ssim()
