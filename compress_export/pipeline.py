"""The whole job, as a list of stages over one job state, then the per-target stages for every target."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .bundle import ensure_writable, write_text_atomic
from .errors import CompressExportError
from .exporters import parse_targets
from .job import Job, PipelineConfig, RunResult, TargetFailure, ValidationSet
from .stages.benchmark import Benchmarker
from .stages.bundle_files import plot_summary
from .stages.compress import compress
from .stages.prepare import load, prepare_data
from .stages.ranges import ranges
from .stages.reference import reference
from .stages.target import build_target

# load -> data -> FP32 export and reference outputs -> calibrate -> compress; then per target:
# export -> validate -> budget search -> analyse -> benchmark -> write (stages/target.py).
STAGES = (prepare_data, reference, ranges, compress)

__all__ = ["PipelineConfig", "RunResult", "ValidationSet", "run"]


def _build_or_record(job: Job, target, bench) -> None:
    """One target's failure is recorded and the next target goes on."""
    try:
        job.reports.append(build_target(job, target, bench))
        job.bundles.append(job.out / target.name)
    except CompressExportError as error:
        job.failures.append(TargetFailure(target.name, str(error), error.exit_code))


def run(config: PipelineConfig) -> RunResult:
    from .llm.source import is_causal_lm

    if config.task == "text-generation" or (config.task == "auto" and is_causal_lm(Path(config.model))):
        from .llm.pipeline import run as run_language_model

        return run_language_model(config)
    from .metrics.fid_features import use_features

    use_features(config.fid_features)
    job = Job(config, parse_targets(config.targets), Path(config.out))
    ensure_writable(job.out)
    load(job)
    with tempfile.TemporaryDirectory(prefix=".ce-work-", dir=job.out) as tmp:
        job.work = Path(tmp)
        for stage in STAGES:
            stage(job)
        bench = None
        if job.config.bench is not None:  # the data stage may have fitted it to a model's fixed batch
            bench = Benchmarker(job.config.bench, job.validation, len(job.targets), config.progress)
        try:
            for target in job.targets:
                _build_or_record(job, target, bench)
        finally:
            if bench:
                bench.close()
    result = RunResult(job.reports, job.bundles, job.failures)
    write_text_atomic(job.out / "summary.json", json.dumps(result.summary(), indent=2) + "\n")
    plot_summary(job.reports, job.out / "tradeoff.png")
    return result
