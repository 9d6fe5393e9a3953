"""Top-1 agreement: how often the candidate's arg-max class is the original's, for (batch, classes) outputs."""

from __future__ import annotations

from .base import OutputMetric


class Top1Agreement(OutputMetric):
    name = "top1"
    keys = ("top1_agreement",)

    def start(self) -> list:
        return [0, 0]

    def update(self, state: list, reference, candidate, labels=None) -> None:
        if reference.ndim == 2 and reference.shape[1] > 1:
            state[0] += int((reference.argmax(1) == candidate.argmax(1)).sum())
            state[1] += reference.shape[0]

    def result(self, state: list) -> dict:
        return {"top1_agreement": state[0] / state[1]} if state[1] else {}

    def output_rows(self, output: str, stats: dict) -> list[tuple[str, float | None, float | None]]:
        return [(f"top-1 agreement `{output}`", 1.0, stats["top1_agreement"])] if "top1_agreement" in stats else []


METRIC = Top1Agreement()
