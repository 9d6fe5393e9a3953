"""Next-token top-1 agreement with the FP32 model: on every scored position of the held-out windows, whether the
candidate's most likely next token is the FP32 model's. Each side hands in `top1`, its argmax per position."""

from __future__ import annotations

from .base import Metric


class TokenAgreement(Metric):
    name = "token_agreement"
    scope = "task"

    def start(self) -> dict:
        return {"same": 0, "tokens": 0}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        if "top1" not in reference or "top1" not in candidate:
            return
        import numpy as np

        ref, cand = np.asarray(reference["top1"]), np.asarray(candidate["top1"])
        state["same"] += int((ref == cand).sum())
        state["tokens"] += len(ref)

    def result(self, state: dict) -> dict:
        if not state["tokens"]:
            return {}
        return {"candidate": {"next_token_agreement": state["same"] / state["tokens"]}}

    def rows(self, parity: dict, metrics: dict) -> list[tuple[str, float | None, float | None]]:
        value = metrics.get("candidate", {}).get("next_token_agreement")
        return [] if value is None else [("next-token top-1 agreement with FP32", 1.0, value)]


METRIC = TokenAgreement()
