"""Decision agreement for outputs that are one probability per sample (a detector's or a VAD's "is it
there" score): how often the candidate lands on the same side of 0.5 as the original. Cosine says
nothing about such an output; a flipped decision is what the user would see."""

from __future__ import annotations

from .base import Gate, OutputMetric

THRESHOLD = 0.5


class DecisionAgreement(OutputMetric):
    name = "decisions"
    keys = ("decision_agreement",)
    gate = Gate("min_decision_agreement", 0.99, "Gate: smallest accepted share of unchanged decisions (probability "
                "> 0.5) for outputs of one probability per sample.", higher_is_better=True,
                score_key="decision_agreement")

    def start(self) -> dict:
        return {"agree": 0, "total": 0, "probability": True}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        one_value = reference.ndim <= 1 or reference.size == reference.shape[0]
        if not one_value or reference.size == 0 or reference.min() < 0 or reference.max() > 1:
            state["probability"] = False
            return
        state["agree"] += int(((reference > THRESHOLD) == (candidate > THRESHOLD)).sum())
        state["total"] += int(reference.size)

    def result(self, state: dict) -> dict:
        if not state["probability"] or not state["total"]:
            return {}
        return {"decision_agreement": state["agree"] / state["total"]}

    def output_rows(self, output: str, stats: dict) -> list[tuple[str, float | None, float | None]]:
        if "decision_agreement" not in stats:
            return []
        return [(f"decisions `{output}` (p > 0.5) agreeing", 1.0, stats["decision_agreement"])]


METRIC = DecisionAgreement()
