"""Largest and mean absolute difference between the candidate's and the original's outputs."""

from __future__ import annotations

from .base import OutputMetric


class AbsError(OutputMetric):
    name = "abs_error"
    keys = ("max_abs", "mean_abs")

    def start(self) -> dict:
        return {"max": 0.0, "sum": 0.0, "count": 0}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        import numpy as np

        diff = np.abs(reference - candidate)
        if diff.size:
            state["max"] = max(state["max"], float(diff.max()))
        state["sum"] += float(diff.sum())
        state["count"] += diff.size

    def result(self, state: dict) -> dict:
        return {"max_abs": state["max"], "mean_abs": state["sum"] / max(state["count"], 1)}

    def output_rows(self, output: str, stats: dict) -> list[tuple[str, float | None, float | None]]:
        return [(f"max abs error `{output}`", 0.0, stats["max_abs"])]


METRIC = AbsError()
