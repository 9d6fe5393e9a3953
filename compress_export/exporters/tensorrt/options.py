"""TensorRT settings: the float precision written into the trt-int8 ONNX, the calibration cache header, and how
the engine is built (typing, compatibility) and whether one is required."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ...calibration.trt_cache import ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_VERSION
from ...specs import OptionSpec

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

    options: ClassVar[tuple[OptionSpec, ...]] = (
        OptionSpec("--trt-weakly-typed", "TensorRT <= 10 only: a weakly typed network whose float layers may run FP16 "
                   "by builder flag (TensorRT 11 removed it; by default the network is strongly typed: precisions from "
                   "the ONNX).", "flag"),
        OptionSpec("--trt-version-compatible", "An engine that later TensorRT releases of the same major also run "
                   "(built without the lean runtime, so it carries no host code).", "flag"),
        OptionSpec("--trt-hardware-compat", "An engine for other GPUs too: every Ampere or newer, or every GPU of this "
                   "compute capability (may be slower).", "choice", "none", tuple(HARDWARE_LEVELS)),
    )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> EngineFlags:
        return cls(values["trt_weakly_typed"], values["trt_version_compatible"], values["trt_hardware_compat"])


@dataclass(frozen=True)
class TrtOptions:
    cache_version: int = DEFAULT_VERSION
    cache_algorithm: str = DEFAULT_ALGORITHM
    require_engine: bool = False
    max_batch: int = 32
    float_precision: str = "fp16"  # the unquantized layers of the ONNX: "fp16" or "fp32"
    engine: EngineFlags = EngineFlags()

    options: ClassVar[tuple[OptionSpec, ...]] = (
        OptionSpec("--trt-float", "Precision of the layers trt-int8 leaves unquantized, written into its ONNX "
                   "(TensorRT 11 takes precisions from the ONNX); layers near FP16's limit on the calibration data "
                   "stay FP32.", "choice", "fp16", ("fp16", "fp32")),
        *EngineFlags.options,
        OptionSpec("--trt-cache-version", "TensorRT version number in the calibration cache header "
                   "(TRT-<version>-<Algorithm>). The cache serves TensorRT <= 10's implicit quantization; TensorRT 11 "
                   "reads the Q/DQ ONNX.", "int", DEFAULT_VERSION, minimum=1),
        OptionSpec("--trt-cache-algorithm", "Algorithm named in the calibration cache header.", "choice",
                   DEFAULT_ALGORITHM, ALGORITHMS),
        OptionSpec("--trt-max-batch", "Largest batch of the TensorRT engine's optimization profile.", "int", 32,
                   minimum=1),
        OptionSpec("--require-engine", "trt-int8: fail with exit 3 unless a TensorRT engine is built and run (no "
                   "onnxruntime proxy).", "flag"),
    )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> TrtOptions:
        return cls(values["trt_cache_version"], values["trt_cache_algorithm"], values["require_engine"],
                   values["trt_max_batch"], values["trt_float"], EngineFlags.from_values(values))
