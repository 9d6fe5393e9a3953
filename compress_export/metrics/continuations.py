"""What the metrics on generated text share: the greedy continuations of the same prompts by the FP32 model
(`reference["continuations"]`, the references) and by the candidate, as strings; and token ids for exact match."""

from __future__ import annotations

from .base import Metric


class ContinuationMetric(Metric):
    scope = "task"
    key = "score"
    label = "score"

    def start(self) -> dict:
        return {"references": [], "candidates": []}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        if "continuations" in reference and "continuations" in candidate:
            state["references"] += list(reference["continuations"])
            state["candidates"] += list(candidate["continuations"])

    def result(self, state: dict) -> dict:
        if not state["references"]:
            return {}
        return {"candidate": {self.key: self.compare(state["candidates"], state["references"])}}

    def compare(self, candidates: list[str], references: list[str]) -> float:
        """The score, 100 where the continuations are identical (even all empty, where BLEU itself reads 0)."""
        return 100.0 if candidates == references else self.score(candidates, references)

    def score(self, candidates: list[str], references: list[str]) -> float:
        raise NotImplementedError

    def value(self, metrics: dict) -> float | None:
        return metrics.get("candidate", {}).get(self.key)

    def rows(self, parity: dict, metrics: dict) -> list[tuple[str, float | None, float | None]]:
        value = self.value(metrics)
        return [] if value is None else [(self.label, 100.0, value)]
