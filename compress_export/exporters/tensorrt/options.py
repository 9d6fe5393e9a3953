"""TensorRT settings: the float precision written into the trt-int8 ONNX, the calibration cache header, and how
the engine is built (typing, compatibility) and whether one is required."""

from __future__ import annotations

from dataclasses import dataclass

HARDWARE_LEVELS = {"none": "NONE", "ampere-plus": "AMPERE_PLUS", "same-cc": "SAME_COMPUTE_CAPABILITY"}


@dataclass(frozen=True)
class EngineFlags:
    """weakly_typed: TensorRT <= 10 only (11 removed weak typing): float layers may run FP16 by builder flag.
    version_compatible: the engine runs on later TensorRT releases of the same major (built without the lean
    runtime, so the plan carries no host code). hardware_compat: a key of HARDWARE_LEVELS. sparse_weights: let
    TensorRT pick sparse kernels for 2:4 weights (set from the ONNX's metadata by --sparsity 2:4)."""

    weakly_typed: bool = False
    version_compatible: bool = False
    hardware_compat: str = "none"
    sparse_weights: bool = False


@dataclass(frozen=True)
class TrtOptions:
    cache_version: int = 100300
    cache_algorithm: str = "EntropyCalibration2"
    require_engine: bool = False
    max_batch: int = 32
    float_precision: str = "fp16"  # the unquantized layers of the ONNX: "fp16" or "fp32"
    engine: EngineFlags = EngineFlags()
