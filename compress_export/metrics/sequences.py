"""Sequence agreement for CTC outputs: a probability distribution over symbols per time step
((batch, steps, symbols), each step summing to 1), as text recognizers (CRNN, SVTR) and speech models
produce. The user sees the decoded string, so the number is the share of samples whose greedy CTC
decoding (best symbol per step, repeats merged, blank 0 dropped) is the original's."""

from __future__ import annotations

from .base import Gate, OutputMetric

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


class SequenceAgreement(OutputMetric):
    name = "sequences"
    keys = ("sequence_agreement",)
    gate = Gate("min_sequence_agreement", 0.9, "Gate: smallest accepted share of samples whose greedy CTC "
                "decoding is unchanged, for outputs of one symbol distribution per step.",
                higher_is_better=True, score_key="sequence_agreement")

    def start(self) -> dict:
        return {"agree": 0, "total": 0, "applies": True}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        if not step_distributions(reference):
            state["applies"] = False
            return
        pairs = zip(greedy_ctc(reference), greedy_ctc(candidate), strict=True)
        state["agree"] += sum(ref == cand for ref, cand in pairs)
        state["total"] += int(reference.shape[0])

    def result(self, state: dict) -> dict:
        if not state["applies"] or not state["total"]:
            return {}
        return {"sequence_agreement": state["agree"] / state["total"]}

    def output_rows(self, output: str, stats: dict) -> list[tuple[str, float | None, float | None]]:
        if "sequence_agreement" not in stats:
            return []
        return [(f"CTC sequences `{output}` unchanged", 1.0, stats["sequence_agreement"])]


METRIC = SequenceAgreement()
