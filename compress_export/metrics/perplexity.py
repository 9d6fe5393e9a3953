"""Perplexity of a language model over held-out text, of the FP32 model and of the candidate, scored on the same
sliding windows (window and stride are in the report), and its increase in percent: the LLM quality budget.
Each side hands in `nll`, the negative log-likelihood of every scored token."""

from __future__ import annotations

import math

from .base import Gate, Metric


class Perplexity(Metric):
    name = "perplexity"
    scope = "task"
    gate = Gate("max_perplexity_increase", 5.0, "Gate (language models): largest accepted perplexity increase over "
                "the FP32 model on held-out text, in percent.", higher_is_better=False,
                score_key="perplexity_increase", slack=1e-9)

    def start(self) -> dict:
        return {"reference": 0.0, "candidate": 0.0, "tokens": 0}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        if "nll" not in reference or "nll" not in candidate:
            return
        import numpy as np

        ref, cand = np.asarray(reference["nll"], np.float64), np.asarray(candidate["nll"], np.float64)
        state["reference"] += float(ref.sum())
        state["candidate"] += float(cand.sum())
        state["tokens"] += len(ref)

    def result(self, state: dict) -> dict:
        if not state["tokens"]:
            return {}
        return {side: {"perplexity": math.exp(state[side] / state["tokens"]), "scored_tokens": state["tokens"]}
                for side in ("reference", "candidate")}

    @staticmethod
    def increase(metrics: dict) -> float | None:
        try:
            before, after = metrics["reference"]["perplexity"], metrics["candidate"]["perplexity"]
        except KeyError:
            return None
        return 100.0 * (after - before) / before

    def gate_values(self, parity: dict, metrics: dict) -> list[tuple[str, float]]:
        value = self.increase(metrics)
        return [("max_perplexity_increase", value)] if value is not None else []

    def headline(self, parity: dict, metrics: dict) -> tuple[str, float, float] | None:
        if self.increase(metrics) is None:
            return None
        return "perplexity", metrics["reference"]["perplexity"], metrics["candidate"]["perplexity"]

    def rows(self, parity: dict, metrics: dict) -> list[tuple[str, float | None, float | None]]:
        headline = self.headline(parity, metrics)
        return [headline] if headline else []


METRIC = Perplexity()
