"""BLEU (sacrebleu, corpus level, 0-100) of the candidate's greedy continuations against the FP32 model's
continuations of the same prompts: how much of what the original would have said survives compression."""

from __future__ import annotations

from ..errors import require
from .base import Gate
from .continuations import ContinuationMetric


class Bleu(ContinuationMetric):
    name = "bleu"
    key = "bleu"
    label = "BLEU vs FP32 continuations"
    gate = Gate("min_bleu", 20.0, "Gate (language models): lowest accepted BLEU (0-100) of the greedy continuations "
                "against the FP32 model's.", higher_is_better=True, score_key="bleu", low=0.0, high=100.0)

    def score(self, candidates: list[str], references: list[str]) -> float:
        sacrebleu = require("sacrebleu", "llm")
        return float(sacrebleu.corpus_bleu(candidates, [references]).score)

    def gate_values(self, parity: dict, metrics: dict) -> list[tuple[str, float]]:
        value = self.value(metrics)
        return [] if value is None else [("min_bleu", value)]


METRIC = Bleu()
