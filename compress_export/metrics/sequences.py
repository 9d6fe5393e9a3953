"""Sequence agreement for CTC outputs: a probability distribution over symbols per time step
((batch, steps, symbols), each step summing to 1), as text recognizers (CRNN, SVTR) and speech models
produce. The user sees the decoded string, so the number is the share of samples whose greedy CTC
decoding (best symbol per step, repeats merged, blank 0 dropped) is the original's."""

from __future__ import annotations

from .base import Gate, RatioMetric

BLANK = 0


def step_distributions(array) -> bool:
    import numpy as np

    if array.ndim != 3 or array.shape[-1] < 2 or array.size == 0 or array.min() < 0:
        return False
    return bool(np.allclose(array.sum(axis=-1), 1.0, atol=1e-3))


def greedy_ctc(probabilities) -> list[tuple[int, ...]]:
    import numpy as np

    best = probabilities.argmax(axis=-1)
    decoded = []
    for row in best:
        keep = np.ones(len(row), dtype=bool)
        keep[1:] = row[1:] != row[:-1]
        decoded.append(tuple(int(symbol) for symbol in row[keep] if symbol != BLANK))
    return decoded


class SequenceAgreement(RatioMetric):
    name = "sequences"
    key = "sequence_agreement"
    label = "CTC sequences `{output}` unchanged"
    gate = Gate("min_sequence_agreement", 0.9, "Gate: smallest accepted share of samples whose greedy CTC "
                "decoding is unchanged, for outputs of one symbol distribution per step.",
                higher_is_better=True, score_key="sequence_agreement", high=1.0)

    def count(self, reference, candidate) -> tuple[int, int] | None:
        if not step_distributions(reference):
            return None
        pairs = zip(greedy_ctc(reference), greedy_ctc(candidate), strict=True)
        return sum(ref == cand for ref, cand in pairs), int(reference.shape[0])


METRIC = SequenceAgreement()
