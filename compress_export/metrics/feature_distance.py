"""A perceptual distance of each image to the FP32 generator's from the same inputs: 1 - cosine of their features
through a learned feature model (`--fid-features`, or the digits classifier for 1x8x8 digits), where PSNR reads
pixels alone. Reported, not gated; nothing when the only features are the general random ones (not learned)."""

from __future__ import annotations

from .paired_images import PairedImageMetric


class FeatureDistance(PairedImageMetric):
    name = "feature_distance"
    key = "feature_distance"
    label = "perceptual distance vs FP32 images (1 - feature cosine)"
    ideal = 0.0

    def __init__(self, features: str | None = None):
        self.features = features

    def configured(self, settings) -> FeatureDistance:
        return FeatureDistance(settings.fid_features)

    def gate_values(self, parity: dict, metrics: dict) -> list[tuple[str, float]]:
        return []

    def result(self, state: list) -> dict:
        if not state:
            return {}
        return {"candidate": {self.key: sum(state) / len(state), f"{self.key}_max": max(state)}}

    def update(self, state: list, reference, candidate, labels=None) -> None:
        from .fid import image_output
        from .fid_features import DIGITS_SHAPE

        name = image_output(reference)
        if name is not None and (self.features or tuple(reference[name].shape[1:]) == DIGITS_SHAPE):
            state.extend(self.per_image(reference[name], candidate[name]).tolist())

    def per_image(self, reference, candidate):
        import numpy as np

        from .cosine import cosine_rows
        from .fid_features import features

        cosine = cosine_rows(features(reference, self.features), features(candidate, self.features))
        return 1.0 - np.nan_to_num(cosine, nan=-1.0)


METRIC = FeatureDistance()
