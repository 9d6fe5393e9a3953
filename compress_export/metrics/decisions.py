"""Decision agreement for outputs that are one probability per sample (a detector's or a VAD's "is it
there" score): how often the candidate lands on the same side of 0.5 as the original. Cosine says
nothing about such an output; a flipped decision is what the user would see."""

from __future__ import annotations

from .base import Gate, RatioMetric

THRESHOLD = 0.5


class DecisionAgreement(RatioMetric):
    name = "decisions"
    key = "decision_agreement"
    label = "decisions `{output}` (p > 0.5) agreeing"
    gate = Gate("min_decision_agreement", 0.99, "Gate: smallest accepted share of unchanged decisions (probability "
                "> 0.5) for outputs of one probability per sample.", higher_is_better=True,
                score_key="decision_agreement", high=1.0)

    def count(self, reference, candidate) -> tuple[int, int] | None:
        one_value = reference.ndim <= 1 or reference.size == reference.shape[0]
        if not one_value or reference.size == 0 or reference.min() < 0 or reference.max() > 1:
            return None
        return int(((reference > THRESHOLD) == (candidate > THRESHOLD)).sum()), int(reference.size)


METRIC = DecisionAgreement()
