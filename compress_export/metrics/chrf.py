"""chrF (sacrebleu, 0-100) of the candidate's continuations against the FP32 model's: character n-grams, kinder
than BLEU to a continuation that says the same with other tokens."""

from __future__ import annotations

from ..errors import require
from .continuations import ContinuationMetric


class Chrf(ContinuationMetric):
    name = "chrf"
    key = "chrf"
    label = "chrF vs FP32 continuations"

    def score(self, candidates: list[str], references: list[str]) -> float:
        sacrebleu = require("sacrebleu", "llm")
        return float(sacrebleu.corpus_chrf(candidates, [references]).score)


METRIC = Chrf()
