"""What PSNR and SSIM share: a per-image score of each image against the FP32 generator's from the same inputs, its
mean gated, its worst and its count reported."""

from __future__ import annotations

from .base import Metric


class PairedImageMetric(Metric):
    scope = "task"
    key = ""  # the mean's key in report.json; the worst is key_min, the count key_images
    label = ""  # its row in report.md
    ideal = 1.0  # the value of an image equal to its reference

    def per_image(self, reference, candidate):
        """(N,) scores of (N, C, H, W) images."""
        raise NotImplementedError

    def start(self) -> list:
        return []

    def update(self, state: list, reference, candidate, labels=None) -> None:
        from .fid import image_output

        name = image_output(reference)
        if name is not None:
            state.extend(self.per_image(reference[name], candidate[name]).tolist())

    def result(self, state: list) -> dict:
        if not state:
            return {}
        return {"candidate": {self.key: sum(state) / len(state), f"{self.key}_min": min(state),
                              f"{self.key}_images": len(state)}}

    def gate_values(self, parity: dict, metrics: dict) -> list[tuple[str, float]]:
        value = metrics.get("candidate", {}).get(self.key)
        return [] if value is None else [(self.gate.name, value)]

    def rows(self, parity: dict, metrics: dict) -> list[tuple[str, float | None, float | None]]:
        value = metrics.get("candidate", {}).get(self.key)
        return [] if value is None else [(self.label, self.ideal, value)]
