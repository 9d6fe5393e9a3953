"""Exact match of the first N generated tokens: the share of prompts whose candidate continuation starts with the
same N token ids as the FP32 model's (N in the report; a shorter continuation compares what it has)."""

from __future__ import annotations

from .base import Metric

FIRST_TOKENS = 8


class ExactMatch(Metric):
    name = "exact_match"
    scope = "task"

    def start(self) -> dict:
        return {"same": 0, "prompts": 0}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        if "continuation_ids" not in reference or "continuation_ids" not in candidate:
            return
        for ref, cand in zip(reference["continuation_ids"], candidate["continuation_ids"], strict=True):
            state["same"] += int(list(ref[:FIRST_TOKENS]) == list(cand[:FIRST_TOKENS]))
            state["prompts"] += 1

    def result(self, state: dict) -> dict:
        if not state["prompts"]:
            return {}
        return {"candidate": {"exact_match_first_tokens": state["same"] / state["prompts"],
                              "exact_match_tokens": FIRST_TOKENS}}

    def rows(self, parity: dict, metrics: dict) -> list[tuple[str, float | None, float | None]]:
        value = metrics.get("candidate", {}).get("exact_match_first_tokens")
        return [] if value is None else [(f"exact match of the first {FIRST_TOKENS} tokens", 1.0, value)]


METRIC = ExactMatch()
