"""The metric registry: one module per metric, each exposing `METRIC`; a new metric is its module plus
one name here. Parity, gates, the budget search, the report, `validate` and the summary all read it.
Order matters: it is the order of the report's rows and of the search's tie-breaks (task gates first)."""

from __future__ import annotations

import functools
import importlib

from .base import Gate, Metric

METRIC_MODULES = ("accuracy", "top1", "cosine", "sqnr", "abs_error", "flops", "layer_error")


@functools.cache
def all_metrics() -> tuple[Metric, ...]:
    return tuple(importlib.import_module(f"{__name__}.{name}").METRIC for name in METRIC_MODULES)


def get_metrics(names) -> tuple[Metric, ...]:
    wanted = set(names)
    return tuple(metric for metric in all_metrics() if metric.name in wanted)


def all_gates() -> tuple[Gate, ...]:
    return tuple(metric.gate for metric in all_metrics() if metric.gate is not None)


__all__ = ["Gate", "Metric", "all_gates", "all_metrics", "get_metrics"]
