"""Tasks: what a model does, which metrics judge it, and how to recognise it from its outputs.
A new task is one entry in TASKS (its metrics come from the metric registry)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

RESOURCES = ("flops", "layer_error")


@dataclass(frozen=True)
class Task:
    name: str
    summary: str
    metrics: tuple[str, ...]


TASKS: dict[str, Task] = {
    "classification": Task("classification", "(batch, classes) logits; accuracy where labels exist",
                           ("accuracy", "top1", "cosine", "decisions", "sqnr", "abs_error", *RESOURCES)),
    "embedding": Task("embedding", "embeddings, features or regression outputs",
                      ("cosine", "decisions", "sqnr", "abs_error", *RESOURCES)),
}


def detect_task(outputs: dict) -> Task:
    """classification when an output is (batch, classes) logits, else embedding."""
    from .accuracy import classifier_output

    return TASKS["classification" if classifier_output(outputs) else "embedding"]


def get_task(name: str | None, outputs: dict) -> Task:
    if name in (None, "auto"):
        return detect_task(outputs)
    try:
        return TASKS[name]
    except KeyError:
        raise UsageError(f"unknown task {name!r}; supported: auto, {', '.join(TASKS)}") from None
