"""Accumulates a task's metrics over batches of (reference, candidate) outputs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .base import Metric


class MetricSuite:
    def __init__(self, output_names: Iterable[str], metrics: Sequence[Metric]):
        from ..samplers import TRAJECTORY

        self.names = [name for name in output_names if name != TRAJECTORY]  # the sampler's steps: task metrics
        self.per_output = [m for m in metrics if m.scope == "output"]
        self.per_task = [m for m in metrics if m.scope == "task"]
        self.states = {(name, m.name): m.start() for name in self.names for m in self.per_output}
        self.task_states = {m.name: m.start() for m in self.per_task}

    def update(self, reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
               labels: np.ndarray | None) -> None:
        for name in self.names:
            ref = np.asarray(reference[name], dtype=np.float64)
            cand = np.asarray(candidate[name], dtype=np.float64)
            if ref.shape != cand.shape:
                raise ValueError(f"shape mismatch: reference {ref.shape}, candidate {cand.shape}")
            for metric in self.per_output:
                metric.update(self.states[name, metric.name], ref, cand)
        for metric in self.per_task:
            metric.update(self.task_states[metric.name], reference, candidate, labels)

    def parity(self) -> dict:
        return {name: {key: value for m in self.per_output
                       for key, value in m.result(self.states[name, m.name]).items()} for name in self.names}

    def metrics(self) -> dict:
        merged: dict = {}
        for metric in self.per_task:
            for side, values in metric.result(self.task_states[metric.name]).items():
                merged.setdefault(side, {}).update(values)
        return merged

    def top1_agreement(self) -> float | None:
        for stats in self.parity().values():
            if "top1_agreement" in stats:
                return stats["top1_agreement"]
        return None
