"""Accuracy against labels, of the original and of the candidate, on the first (batch, classes) output."""

from __future__ import annotations

from .base import Gate, Metric


def classifier_output(outputs) -> str | None:
    """The first output that looks like 2-D logits (batch, classes)."""
    for name, value in outputs.items():
        if value.ndim == 2 and value.shape[1] > 1:
            return name
    return None


class Accuracy(Metric):
    name = "accuracy"
    scope = "task"
    gate = Gate("max_accuracy_drop", 1.0, "Gate: largest accepted accuracy drop, in points (needs labels).",
                higher_is_better=False, score_key="accuracy_drop", slack=1e-9, low=0.0, high=100.0)

    def start(self) -> dict:
        return {"reference": 0, "candidate": 0, "labelled": 0}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        logits = classifier_output(reference)
        if labels is None or logits is None:
            return
        from ..errors import UsageError

        rows, classes = reference[logits].shape
        if rows != len(labels):
            raise UsageError(f"output {logits!r} has {rows} rows for {len(labels)} labelled samples: the model does "
                             "not give one row of class scores per sample, so accuracy cannot be measured")
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise UsageError(f"the labels run from {labels.min()} to {labels.max()}, but output {logits!r} has "
                             f"{classes} classes: are they the labels of this model?")
        state["reference"] += int((reference[logits].argmax(1) == labels).sum())
        state["candidate"] += int((candidate[logits].argmax(1) == labels).sum())
        state["labelled"] += len(labels)

    def result(self, state: dict) -> dict:
        if not state["labelled"]:
            return {}
        return {side: {"accuracy": state[side] / state["labelled"], "samples": state["labelled"]}
                for side in ("reference", "candidate")}

    @staticmethod
    def _pair(metrics: dict) -> tuple[float, float] | None:
        try:
            return metrics["reference"]["accuracy"], metrics["candidate"]["accuracy"]
        except KeyError:
            return None

    def gate_values(self, parity: dict, metrics: dict) -> list[tuple[str, float]]:
        pair = self._pair(metrics)
        return [("max_accuracy_drop", 100.0 * (pair[0] - pair[1]))] if pair else []

    def headline(self, parity: dict, metrics: dict) -> tuple[str, float, float] | None:
        pair = self._pair(metrics)
        return ("accuracy", *pair) if pair else None

    def rows(self, parity: dict, metrics: dict) -> list[tuple[str, float | None, float | None]]:
        pair = self._pair(metrics)
        return [("accuracy", *pair)] if pair else []


METRIC = Accuracy()
