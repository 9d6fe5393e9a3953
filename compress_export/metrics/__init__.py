"""The metric registry: one module per metric, named as the metric and exposing `METRIC`. The tasks in
tasks.py name the metrics they compute; the registry is every metric some task names, in order of first
mention, so a new metric is its module plus its name in a task's list. Parity, gates, the budget search,
the report, `validate` and the summary all read it. Order matters: it is the order of the report's rows
and of the search's tie-breaks (task gates first)."""

from __future__ import annotations

import functools
import importlib

from .base import Gate, Metric, MetricSettings


@functools.cache
def all_metrics() -> tuple[Metric, ...]:
    from .tasks import TASKS

    names = dict.fromkeys(name for task in TASKS.values() for name in task.metrics)
    return tuple(importlib.import_module(f"{__name__}.{name}").METRIC for name in names)


def get_metrics(names, settings: MetricSettings | None = None) -> tuple[Metric, ...]:
    """The named metrics in registry order, configured for the run's settings."""
    wanted = set(names)
    settings = settings or MetricSettings()
    return tuple(metric.configured(settings) for metric in all_metrics() if metric.name in wanted)


def all_gates() -> tuple[Gate, ...]:
    return tuple(metric.gate for metric in all_metrics() if metric.gate is not None)


__all__ = ["Gate", "Metric", "MetricSettings", "all_gates", "all_metrics", "get_metrics"]
