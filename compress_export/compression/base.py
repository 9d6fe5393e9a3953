"""The compression-method protocol: a step that takes the source model and data and returns a model
(plus ranges where it learned them) and its report section."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..specs import OptionSpec

if TYPE_CHECKING:
    from ..calibration.range_table import RangeTable
    from ..exporters import Target
    from ..report.report import Report
    from ..sources import LoadedModel


@dataclass
class Compressed:
    """What a compression step hands on. The targets it `applies_to` export `model` (from `fp32_onnx`
    when they read ONNX) and take `ranges` when they read ranges from the same place (`ranges_space`:
    "onnx" for the FP32 graph's tensors, "source" for the source model's layers)."""

    model: LoadedModel
    section: dict
    applies_to: Callable[[Target], bool]
    fp32_onnx: Path | None = None
    ranges: RangeTable | None = None
    ranges_space: str | None = None
    files: dict[str, Callable[[Path], Any]] = field(default_factory=dict)  # written into each bundle it applies to
    compare_key: str | None = None  # where the report keeps the same target built from the original model
    applies_to_all: bool = False  # a new model for every target (pruned, distilled), which later steps build on


class CompressionMethod(ABC):
    """name: the report.json section and the `compression` key. title: its report.md heading. options: its
    command-line options (the CLI generates them); `settings` turns the parsed values into this step's settings.
    makes_student: it replaces the model with a smaller one that distillation can train. model_kinds: the kinds of
    model it can change (compression/model_kinds.py), checked before anything runs."""

    name: str = "method"
    title: str = "Compression"
    options: tuple[OptionSpec, ...] = ()
    makes_student: bool = False
    model_kinds: tuple[str, ...] = ("torch",)

    def settings(self, values: Mapping[str, Any], seed: int) -> Any | None:
        """This step's settings from every parsed option of the run (a step may read another step's options), or
        None when the run does not ask for it. Refuse inconsistent values here (UsageError), before any work."""
        return None

    def refuse_for(self, kind: str, settings: Any) -> None:
        """Refuse settings this kind of model (compression/model_kinds.py) cannot take, before anything runs."""

    @abstractmethod
    def apply(self, job, settings: Any) -> Compressed:
        """Refuse what does not apply (UsageError) before any work; then compress."""

    def skipped_note(self, target: Target) -> str | None:
        """A warning for a target this step quantizes nothing for, though the user asked for it."""
        return None

    def markdown(self, section: dict, report: Report) -> list[str]:
        return []


def current_model(job) -> tuple[LoadedModel, Path | None, RangeTable | None]:
    """(model, FP32 ONNX, ONNX range table) the next step starts from: the last step's that applies to every
    target (a pruned or distilled model), else the original."""
    for _, done in reversed(job.compressed):
        if done.applies_to_all:
            return done.model, done.fp32_onnx or job.fp32, done.ranges if done.ranges_space == "onnx" else job.ranges
    return job.model, job.fp32, job.ranges


def source_for(job, target):
    """(model, FP32 ONNX, range table) a target is built from: the original, or what the compression
    steps that apply to it produced."""
    model, fp32 = job.model, job.fp32
    ranges = job.ranges if target.ranges == "onnx" else None
    for _, done in job.compressed:
        if not done.applies_to(target):
            continue
        model = done.model
        fp32 = done.fp32_onnx or fp32
        if done.ranges is not None and done.ranges_space == target.ranges:
            ranges = done.ranges
    return model, fp32, ranges
