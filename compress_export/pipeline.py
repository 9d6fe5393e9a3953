"""The whole job: the model's task family picks a stage list; its stages run one after another over one job state,
then its per-target stage runs for every target (one target's failure is recorded and the next goes on)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .bundle.writer import ensure_writable, write_text_atomic
from .data.validation_set import ValidationSet
from .errors import CompressExportError
from .exporters import Target, parse_targets
from .job import Job, PipelineConfig, RunResult, TargetFailure
from .metrics.tasks import get_task
from .report.plots import plot_generation_tradeoff, plot_summary
from .stages import generation, prepare
from .stages.benchmark import open_benchmark
from .stages.compress import compress
from .stages.ranges import ranges
from .stages.reference import reference
from .stages.target import build_target

__all__ = ["STAGES", "PipelineConfig", "RunResult", "StageList", "ValidationSet", "run"]


@dataclass(frozen=True)
class StageList:
    """check: refusals before anything is written; before: the stages before the targets, in order; per_target:
    the stage that builds, validates and bundles one target; plot: the run's trade-off plot of every target."""

    check: Callable[[PipelineConfig], None]
    before: tuple[Callable[[Job], None], ...]
    per_target: Callable[[Job, Target], object]
    plot: Callable[[list, Path], object]


STAGES: dict[str, StageList] = {
    # load -> data -> FP32 export, reference outputs and task -> calibrate -> compress -> benchmark; per target:
    # export -> budget search -> validate -> analyse -> benchmark -> bundle (stages/target.py)
    "tensor": StageList(prepare.check, (prepare.load, prepare.prepare_data, reference, ranges, compress,
                                        open_benchmark), build_target, plot_summary),
    # load -> held-out text -> FP32 decoder and its scores -> prune/distill; per target: weights (width search) ->
    # measure -> bundle
    "generation": StageList(generation.check, (generation.load, generation.read_text, generation.reference,
                                               generation.compress),
                            generation.build_target, plot_generation_tradeoff),
}


def task_family(config: PipelineConfig) -> str:
    """A named task says its family; otherwise a causal language model (a ...ForCausalLM folder, a GGUF file) is
    a language model and anything else a network, whose task its outputs decide later."""
    if config.task not in (None, "auto"):
        return get_task(config.task, {}).family
    from .sources.causal_lm import is_causal_lm

    return "generation" if is_causal_lm(Path(config.model)) else "tensor"


def run(config: PipelineConfig) -> RunResult:
    family = task_family(config)
    stages = STAGES[family]
    stages.check(config)
    job = Job(config, parse_targets(config.targets, family), Path(config.out))
    ensure_writable(job.out)
    with tempfile.TemporaryDirectory(prefix=".ce-work-", dir=job.out) as tmp:
        job.work = Path(tmp)
        try:
            for stage in stages.before:
                with _timed(job, stage.__name__):
                    stage(job)
            for target in job.targets:
                with _timed(job, target.name):
                    _build_or_record(job, target, stages.per_target)
        finally:
            if job.bench is not None:
                job.bench.close()
    result = RunResult(job.reports, job.bundles, job.failures, seconds=job.seconds)
    write_text_atomic(job.out / "summary.json", json.dumps(result.summary(), indent=2) + "\n")
    stages.plot(job.reports, job.out / "tradeoff.png")
    return result


@contextmanager
def _timed(job: Job, name: str):
    """The tool's own time, per stage and per target: summary.json's `seconds`, the last line on the terminal."""
    start = time.perf_counter()
    try:
        yield
    finally:
        job.seconds[name] = round(time.perf_counter() - start, 2)


def _build_or_record(job: Job, target: Target, per_target) -> None:
    try:
        job.reports.append(per_target(job, target))
        job.bundles.append(job.out / target.name)
    except CompressExportError as error:
        job.failures.append(TargetFailure(target.name, str(error), error.exit_code))
