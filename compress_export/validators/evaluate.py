"""Run a candidate on the held-out batches and accumulate the task's metrics against the original's outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..errors import ExportError
from ..metrics.suite import MetricSuite
from ..runtimes.base import by_reference_names


def compare(runner_factory: Callable, validation, metrics: Sequence) -> MetricSuite:
    """`runner_factory()` gives a runner context manager; `validation` a ValidationSet (with its sampler, each
    batch is sampled with the runner as the denoiser, as the original's outputs were)."""
    suite = None
    with runner_factory() as runner:
        for feeds, labels, expected in validation.batches:
            produced = by_reference_names(sampled(validation.sampler, runner.infer, feeds), list(expected))
            _same_shapes(expected, produced)
            suite = suite or MetricSuite(list(expected), metrics)
            suite.update(expected, produced, labels)
    return suite


def sampled(sampler, call: Callable[[dict], dict], feeds: dict) -> dict:
    """The outputs of one batch: the model's own, or its sampler's final images and steps."""
    return call(feeds) if sampler is None else sampler.run(call, feeds)


def _same_shapes(expected: dict, produced: dict) -> None:
    """An artifact whose output is shaped unlike the original's on the same inputs computes something else."""
    for name, value in expected.items():
        got = getattr(produced[name], "shape", None)
        if got is not None and got != getattr(value, "shape", got):
            raise ExportError(f"the artifact's output {name!r} has shape {tuple(got)} where the original's has "
                              f"{tuple(value.shape)} on the same inputs")
