"""Signal-to-quantization-noise ratio in dB over all elements of an output."""

from __future__ import annotations

import math

from .base import OutputMetric


def sqnr_db(signal: float, noise: float) -> float:
    """inf for no noise; -inf where the noise swamps the signal or is not finite (an FP16 tensor past its range)."""
    if noise == 0.0:
        return float("inf")
    ratio = signal / noise
    if not ratio > 0.0:  # no signal, infinite noise, or inf / inf
        return float("-inf")
    return 10.0 * math.log10(ratio)


class Sqnr(OutputMetric):
    name = "sqnr"
    keys = ("sqnr_db",)

    def start(self) -> list:
        return [0.0, 0.0]

    def update(self, state: list, reference, candidate, labels=None) -> None:
        state[0] += float((reference**2).sum())
        state[1] += float(((reference - candidate) ** 2).sum())

    def result(self, state: list) -> dict:
        return {"sqnr_db": sqnr_db(*state)}

    def output_rows(self, output: str, stats: dict) -> list[tuple[str, float | None, float | None]]:
        return [(f"SQNR `{output}` (dB)", None, stats["sqnr_db"])]


METRIC = Sqnr()
