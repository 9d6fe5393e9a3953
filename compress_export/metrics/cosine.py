"""Cosine similarity per sample (flattened), its mean and minimum; the default quality gate."""

from __future__ import annotations

from .base import Gate, OutputMetric


def cosine_rows(a, b):
    """Cosine similarity per row; two all-zero rows count as identical."""
    import numpy as np

    dot = (a * b).sum(axis=1)
    norm_a, norm_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    norms = norm_a * norm_b
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where((norm_a == 0) & (norm_b == 0), 1.0, cos)


class Cosine(OutputMetric):
    name = "cosine"
    keys = ("cosine", "cosine_min", "samples")
    gate = Gate("min_cosine", 0.99, "Gate: smallest accepted mean cosine similarity per output.",
                higher_is_better=True, score_key="cosine")

    def start(self) -> list:
        return []

    def update(self, state: list, reference, candidate, labels=None) -> None:
        rows = reference.reshape(reference.shape[0], -1) if reference.ndim else reference.reshape(1, 1)
        state.extend(cosine_rows(rows, candidate.reshape(rows.shape)).tolist())

    def result(self, state: list) -> dict:
        import numpy as np

        values = np.asarray(state) if state else np.asarray([1.0])
        return {"cosine": float(values.mean()), "cosine_min": float(values.min()), "samples": len(state)}

    def gate_values(self, parity: dict, metrics: dict) -> list[tuple[str, float]]:
        return [(f"min_cosine[{output}]", stats["cosine"]) for output, stats in parity.items() if "cosine" in stats]

    def headline(self, parity: dict, metrics: dict) -> tuple[str, float, float] | None:
        values = [stats["cosine"] for stats in parity.values() if "cosine" in stats]
        return ("cosine", 1.0, min(values)) if values else None

    def output_rows(self, output: str, stats: dict) -> list[tuple[str, float | None, float | None]]:
        return [(f"cosine `{output}`", 1.0, stats["cosine"])]


METRIC = Cosine()
