"""Mask agreement for segmentation-style outputs: a probability map per pixel ((batch, 1, H, W) or
(batch, H, W), values in [0, 1]), as text detectors (DBNet) and segmenters produce. The user sees the
mask, so the number is the intersection over union of the pixels above 0.5, original against candidate."""

from __future__ import annotations

from .base import Gate, RatioMetric

THRESHOLD = 0.5
MIN_PIXELS = 256  # a map smaller than 16x16 is a score vector, not a mask


def probability_map(array) -> bool:
    """One probability per pixel; a (batch, steps, symbols) distribution per step is a sequence instead."""
    from .sequences import step_distributions

    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[1] != 1) or array.size == 0:
        return False
    if array.shape[-1] * array.shape[-2] < MIN_PIXELS or array.min() < 0 or array.max() > 1:
        return False
    return array.ndim == 4 or not step_distributions(array)


class MaskIoU(RatioMetric):
    name = "masks"
    key = "mask_iou"
    label = "mask IoU `{output}` (p > 0.5)"
    gate = Gate("min_mask_iou", 0.95, "Gate: smallest accepted IoU of the masks (probability > 0.5) of "
                "probability-map outputs against the original's.", higher_is_better=True, score_key="mask_iou",
                high=1.0)

    def count(self, reference, candidate) -> tuple[int, int] | None:
        if not probability_map(reference):
            return None
        ref, cand = reference > THRESHOLD, candidate > THRESHOLD
        return int((ref & cand).sum()), int((ref | cand).sum())


METRIC = MaskIoU()
