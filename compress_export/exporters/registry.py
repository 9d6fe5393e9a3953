"""The target registry: small declarative specs registered by decorator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..ranges import RangeTable
from ..specs import Artifact, QuantRecipe, TensorSpec


@dataclass(frozen=True)
class TrtOptions:
    """TensorRT settings: the calibration cache header, and whether an engine is required."""

    cache_version: int = 100300
    cache_algorithm: str = "EntropyCalibration2"
    require_engine: bool = False
    max_batch: int = 32


@dataclass(frozen=True)
class ExportContext:
    fp32_onnx: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]
    recipe: QuantRecipe
    ranges: RangeTable | None
    bundle_dir: Path
    trt: TrtOptions = field(default_factory=lambda: TrtOptions())
    example_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    float_nodes: frozenset[str] = frozenset()  # kept in float by the quality-budget fallback
    source: Any = None  # the loaded model, for targets that convert it directly (TFLite)
    calibration: Any = None  # CalibrationData, for targets that calibrate the source model themselves
    tflite_io: str = "int8"
    qat: Any = None  # QatSettings, for targets that fine-tune the source model themselves (Keras tflite-int8)
    train: Any = None  # CalibrationData for that fine-tuning


@dataclass(frozen=True)
class Target:
    name: str
    summary: str
    export: Callable[[ExportContext], Artifact]
    needs_ranges: bool = False
    extra: str = "core"
    consumes: str = "onnx"  # "onnx": the FP32 ONNX graph; "source": the loaded model itself


TARGETS: dict[str, Target] = {}


def register(name: str, summary: str, *, needs_ranges: bool = False, extra: str = "core", consumes: str = "onnx"):
    def decorate(export: Callable[[ExportContext], Artifact]) -> Callable[[ExportContext], Artifact]:
        TARGETS[name] = Target(name, summary, export, needs_ranges, extra, consumes)
        return export

    return decorate


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise UsageError(f"unknown target {name!r}; supported: {', '.join(TARGETS)}") from None


def parse_targets(text: str) -> list[Target]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError("--to needs at least one target")
    return [get_target(name) for name in dict.fromkeys(names)]
