"""PSNR of each image against the FP32 generator's image from the same inputs (a paired metric: the same latents and
noise), in dB over the reference image's own value range; the mean over images, and the worst (psnr_db_min).
Identical images read PSNR_CAP rather than infinity, so JSON and the budget search can hold it."""

from __future__ import annotations

from .base import Gate
from .paired_images import PairedImageMetric

PSNR_CAP = 100.0  # dB: an image equal to its reference


def image_psnr(reference, candidate):
    """Per image (axis 0) PSNR in dB; the peak is the reference image's max - min (1 where it is flat). An image with
    a value that is not finite (an overflowed artifact's NaN) reads 0 dB, never the cap of an identical image."""
    import numpy as np

    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    axes = tuple(range(1, reference.ndim))
    peak = reference.max(axis=axes) - reference.min(axis=axes)
    peak = np.where(peak > 0, peak, 1.0)
    mse = ((reference - candidate) ** 2).mean(axis=axes)
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10(peak**2 / mse)
    capped = np.minimum(np.where(mse > 0, values, PSNR_CAP), PSNR_CAP)
    return np.where(np.isfinite(mse), capped, 0.0)


class Psnr(PairedImageMetric):
    name = "psnr"
    gate = Gate("min_psnr", 30.0, "Gate (image generators): smallest accepted mean PSNR (dB) of the images against the "
                "FP32 generator's from the same inputs.", higher_is_better=True, score_key="psnr", low=0.0)
    key = "psnr_db"
    label = "PSNR vs FP32 images (dB)"
    ideal = PSNR_CAP

    def per_image(self, reference, candidate):
        return image_psnr(reference, candidate)


METRIC = Psnr()
