"""TensorRT settings: the calibration cache header, and whether an engine is required."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrtOptions:
    cache_version: int = 100300
    cache_algorithm: str = "EntropyCalibration2"
    require_engine: bool = False
    max_batch: int = 32
