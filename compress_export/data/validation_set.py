"""The held-out set a run validates on: batches of inputs with their labels (or None) and the original model's
outputs, computed once per run and read by every target, the budget search and the bundle's reference files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..samplers import TRAJECTORY
from .calibration_data import batch_rows


@dataclass
class ValidationSet:
    """Held-out batches with the original model's outputs, computed once per run."""

    batches: list[tuple[dict[str, np.ndarray], np.ndarray | None, dict[str, np.ndarray]]]
    origin: str
    sampler: object = None  # samplers.base.Sampler: how the outputs were made from the inputs (None: one call)

    @property
    def samples(self) -> int:
        return sum(batch_rows(feeds) for feeds, _, _ in self.batches)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.batches[0][2] if name != TRAJECTORY)  # the model's own outputs

    @property
    def example_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: value.shape for name, value in self.batches[0][0].items()}


SUBSAMPLE = 64  # held-out samples the budget search scores each trial on


def subsample(batches: Sequence, limit: int = SUBSAMPLE) -> list:
    """The first `limit` samples of (feeds, labels, outputs) batches, the last batch cut to fit."""
    chosen, taken = [], 0
    for feeds, labels, expected in batches:
        if taken >= limit:
            break
        rows = min(batch_rows(feeds), limit - taken)
        chosen.append(({k: v[:rows] for k, v in feeds.items()}, None if labels is None else labels[:rows],
                       {k: v[:rows] for k, v in expected.items()}))
        taken += rows
    return chosen
