"""The job: its configuration and the typed state the stages fill in, one stage after another."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data.validation_set import ValidationSet
from .metrics.base import MetricSettings
from .metrics.gates import Gates
from .specs import QuantRecipe, TensorSpec
from .validators.bench import BenchSettings

if TYPE_CHECKING:
    from .calibration.range_table import RangeTable
    from .compression.base import Compressed, CompressionMethod
    from .data.calibration_data import CalibrationData
    from .exporters import Target
    from .exporters.genai.options import LlmSettings
    from .metrics.tasks import Task
    from .report.report import Report
    from .sources import LoadedModel
    from .sources.causal_lm import CausalLM
    from .validators.speedup import Benchmarker


@dataclass(frozen=True)
class PipelineConfig:
    """Everything a run is asked to do. `target_options` holds each target family's settings by the key
    its targets declare ("tensorrt": TrtOptions, "tflite": TfliteOptions); `compression` the compression
    steps in order, each (method name, its settings)."""

    model: str
    targets: str
    out: Path
    weights: str | None = None
    inputs: tuple[TensorSpec, ...] = ()
    trust_pickle: bool = False
    calib_data: str | None = None
    text_data: str | None = None  # one text a line (encoders); held-out text, a file or folder (language models)
    prompts: str | None = None  # language models: prompts for the continuations
    fid_features: str | None = None  # image generators: the ONNX feature model FID reads images through
    sampler: str | None = None  # image generators: how the denoiser makes an image (samplers.get_sampler)
    seq_len: int = 128
    calib_samples: int | None = None
    calib_batch: int = 16
    val_data: str | None = None
    holdout: float = 0.2
    random_data: bool = False
    random_samples: int = 64
    train_data: str | None = None
    ranges_from: str | None = None
    ranges_from_cache: str | None = None
    recipe: QuantRecipe = field(default_factory=QuantRecipe)
    gates: Gates = field(default_factory=Gates)
    bench: BenchSettings | None = field(default_factory=BenchSettings)
    fallback: bool = True
    search_minutes: float = 10.0  # the budget search's way back to INT8 stops here; the prefix it found stands
    task: str = "auto"
    target_options: Mapping[str, Any] = field(default_factory=dict)
    compression: tuple[tuple[str, Any], ...] = ()
    seed: int = 0
    progress: bool = True
    run_recipe: Mapping[str, Any] | None = None  # every CLI setting, written to each bundle as recipe.yaml
    with_baseline: bool = False  # each bundle carries its FP32 baseline, so `validate` times speed-ups there
    stats_cache: str | None = None  # a folder of calibration statistics shared between runs (not a job setting)


@dataclass
class HeldOutText:
    """A language model's held-out text, prompts and FP32 numbers, which every target is measured against: the
    scored windows of token ids, the FP32 decoder's per-token scores on them, and its weight matrices."""

    settings: LlmSettings
    origin: str = ""
    prompt_origin: str = ""
    prompts: list[str] = field(default_factory=list)
    long_prompt: str = ""
    tokenizer: Any = None
    spans: list = field(default_factory=list)  # data.text.Window
    matrices: list = field(default_factory=list)  # exporters.genai.build.WeightMatrix of the FP32 decoder
    reference: dict = field(default_factory=dict)  # the FP32 decoder's scores: nll and top-1 per scored token


@dataclass
class Job:
    """`fp32` is the original model's FP32 ONNX file (the FP32 decoder's folder for a language model); `text` what a
    language model is measured on; `bench` the benchmark the targets share."""

    config: PipelineConfig
    targets: list[Target]
    out: Path
    work: Path | None = None
    model: LoadedModel | CausalLM | None = None
    calib: CalibrationData | None = None
    val: CalibrationData | None = None
    val_origin: str = ""
    train: CalibrationData | None = None
    validation: ValidationSet | None = None
    task: Task | None = None
    fp32: Path | None = None  # the original model's FP32 ONNX, when a target or a compression step needs it
    original_fp32: Path | None = None  # a language model's original FP32 decoder once `fp32` is its pruned one
    lm_compression: dict | None = None  # a language model's pruning/distillation record and stage table
    export_check: dict | None = None
    ranges: RangeTable | None = None  # the FP32 ONNX graph's ranges, when a target reads them
    ranges_error: Exception | None = None  # why there are none, for the targets that read them
    compressed: list[tuple[CompressionMethod, Compressed]] = field(default_factory=list)
    baselines: dict[str, tuple[str, Path]] = field(default_factory=dict)  # FP32 models timed beside targets
    reports: list[Report] = field(default_factory=list)
    bundles: list[Path] = field(default_factory=list)
    failures: list[TargetFailure] = field(default_factory=list)
    text: HeldOutText | None = None
    bench: Benchmarker | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # the tool's time per stage and per target
    ptq_statistics: dict = field(default_factory=dict)  # layer inputs and ranges the PTQ steps share between targets

    @property
    def metric_settings(self) -> MetricSettings:
        return MetricSettings(fid_features=self.config.fid_features)

    @property
    def onnx_targets(self) -> list[Target]:
        return [target for target in self.targets if target.consumes == "onnx"]

    @property
    def calibration_recipe(self) -> QuantRecipe:
        """The recipe widened by the op types the range-reading targets also quantize (trt-int8's residual
        Adds), so that every tensor their placement needs has a calibrated range."""
        from dataclasses import replace

        from .graphs.selection import op_types

        recipe = self.config.recipe
        extra = [op for target in self.targets if target.ranges == "onnx" for op in target.calibrates
                 if op not in recipe.exclude_ops]
        if recipe.include_ops or not extra:
            return recipe
        return replace(recipe, include_ops=tuple(dict.fromkeys([*op_types(recipe), *extra])))

    @property
    def task_metrics(self) -> tuple:
        from .metrics import get_metrics

        return get_metrics(self.task.metrics, self.metric_settings)

    def options_for(self, target: Target) -> Any:
        from .exporters.catalog import default_options

        if target.options is None:
            return None
        return self.config.target_options.get(target.options) or default_options(target.options)

    @functools.cached_property
    def context(self) -> dict:
        """The part of every report that describes the run rather than the target (asked for once the
        stages before the targets are done)."""
        from . import __version__

        context = {
            "source": self.model.describe(),
            "task": self.task.name,
            "data": {"calibration": self.calib.describe(),
                     "validation": {**self.val.describe(), "origin": self.val_origin}},
            "recipe": self.config.recipe.to_dict(),
            "export_check": self.export_check,
            "compress_export_version": __version__,
        }
        if self.ranges is not None:
            context["calibration"] = {"method": self.ranges.method, "tensors": len(self.ranges.ranges),
                                      "skipped": self.ranges.skipped}
            if self.ranges.statistics:
                context["calibration"]["statistics"] = self.ranges.statistics
        return context


@dataclass(frozen=True)
class TargetFailure:
    """A target whose export failed; the others went on, and its previous bundle, if any, is untouched."""

    target: str
    error: str
    exit_code: int


@dataclass
class RunResult:
    reports: list[Report]
    bundles: list[Path]
    failures: list[TargetFailure] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        codes = [report.exit_code for report in self.reports] + [failure.exit_code for failure in self.failures]
        return max(codes, default=0)

    def summary(self) -> dict:
        return {
            "passed": not self.failures and all(report.passed for report in self.reports),
            "exit_code": self.exit_code,
            "targets": [
                {"target": report.target, "passed": report.passed, "bundle": str(bundle), "report": report.to_dict()}
                for report, bundle in zip(self.reports, self.bundles, strict=True)
            ] + [{"target": failure.target, "passed": False, "error": failure.error, "exit_code": failure.exit_code}
                 for failure in self.failures],
            "fastest_passing": self.fastest_passing(),
            "seconds": {**self.seconds, "total": round(sum(self.seconds.values()), 2)},
        }

    def fastest_passing(self) -> dict:
        """Per batch size, the passing artifact with the lowest p50 on this machine: what to ship to a CPU like it."""
        fastest: dict[str, dict] = {}
        for report in self.reports:
            timed = report.bench.get("candidate", {}).get("by_batch", {})
            for batch, stats in timed.items() if report.passed else ():
                if batch not in fastest or stats["p50_ms"] < fastest[batch]["p50_ms"]:
                    versus = report.bench.get("ratios_vs_fastest_fp32", report.bench.get("ratios", {}))
                    fastest[batch] = {"target": report.target, "runtime": report.artifact.get("runtime"),
                                      "p50_ms": stats["p50_ms"],
                                      "speedup_vs_fastest_fp32": versus.get(f"speedup_p50_batch{batch}"),
                                      "fastest_fp32": report.bench.get("fastest_fp32", {}).get(batch)}
        return fastest
