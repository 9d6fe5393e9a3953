"""Stage 6: the benchmark the targets share (each artifact timed beside its FP32 baseline in a fresh process)."""

from __future__ import annotations

from ..validators.speedup import Benchmarker


def open_benchmark(job) -> None:
    """Nothing with --no-bench; the data stage may have fitted the batch sizes to a model's fixed batch."""
    if job.config.bench is not None:
        job.bench = Benchmarker(job.config.bench, job.validation, len(job.targets), job.config.progress)
