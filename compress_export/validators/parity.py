"""Stateless parity statistics between reference and candidate outputs, accumulated batch by batch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass
class OutputParity:
    """Streaming statistics for one output."""

    max_abs: float = 0.0
    abs_sum: float = 0.0
    count: int = 0
    signal: float = 0.0
    noise: float = 0.0
    cosines: list[float] = field(default_factory=list)
    top1_agree: int = 0
    top1_total: int = 0

    def update(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        ref = np.asarray(reference, dtype=np.float64)
        cand = np.asarray(candidate, dtype=np.float64)
        if ref.shape != cand.shape:
            raise ValueError(f"shape mismatch: reference {ref.shape}, candidate {cand.shape}")
        diff = np.abs(ref - cand)
        if diff.size:
            self.max_abs = max(self.max_abs, float(diff.max()))
        self.abs_sum += float(diff.sum())
        self.count += diff.size
        self.signal += float((ref**2).sum())
        self.noise += float(((ref - cand) ** 2).sum())
        rows_ref = ref.reshape(ref.shape[0], -1) if ref.ndim else ref.reshape(1, 1)
        rows_cand = cand.reshape(rows_ref.shape)
        self.cosines.extend(cosine_rows(rows_ref, rows_cand).tolist())
        if ref.ndim == 2 and ref.shape[1] > 1:
            self.top1_agree += int((ref.argmax(1) == cand.argmax(1)).sum())
            self.top1_total += ref.shape[0]

    def result(self) -> dict:
        cosines = np.asarray(self.cosines) if self.cosines else np.asarray([1.0])
        out = {
            "max_abs": self.max_abs,
            "mean_abs": self.abs_sum / max(self.count, 1),
            "cosine": float(cosines.mean()),
            "cosine_min": float(cosines.min()),
            "sqnr_db": sqnr_db(self.signal, self.noise),
            "samples": len(self.cosines),
        }
        if self.top1_total:
            out["top1_agreement"] = self.top1_agree / self.top1_total
        return out


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity per row; two all-zero rows count as identical."""
    dot = (a * b).sum(axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where(both_zero, 1.0, cos)


def sqnr_db(signal: float, noise: float) -> float:
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return float(10.0 * np.log10(signal / noise))


class ParityAccumulator:
    """Parity of every output plus task accuracy when labels are present."""

    def __init__(self, output_names: Iterable[str]):
        self.outputs = {name: OutputParity() for name in output_names}
        self.correct = {"reference": 0, "candidate": 0}
        self.labelled = 0

    def update(
        self, reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray], labels: np.ndarray | None
    ) -> None:
        for name, stats in self.outputs.items():
            stats.update(reference[name], candidate[name])
        logits = classifier_output(reference)
        if labels is not None and logits is not None:
            self.correct["reference"] += int((reference[logits].argmax(1) == labels).sum())
            self.correct["candidate"] += int((candidate[logits].argmax(1) == labels).sum())
            self.labelled += len(labels)

    def parity(self) -> dict:
        return {name: stats.result() for name, stats in self.outputs.items()}

    def top1_agreement(self) -> float | None:
        for stats in self.outputs.values():
            if stats.top1_total:
                return stats.top1_agree / stats.top1_total
        return None

    def metrics(self) -> dict:
        if not self.labelled:
            return {}
        return {
            side: {"accuracy": hits / self.labelled, "samples": self.labelled} for side, hits in self.correct.items()
        }


def classifier_output(outputs: Mapping[str, np.ndarray]) -> str | None:
    """The first output that looks like 2-D logits (batch, classes)."""
    for name, value in outputs.items():
        if value.ndim == 2 and value.shape[1] > 1:
            return name
    return None
