"""TensorRT's calibration cache text format.

First line `TRT-<version>-<Algorithm>`, then `tensor_name: hex` per tensor, where hex is the
big-endian IEEE-754 float32 bit pattern of `scale = amax / 127`, lowercase, without `0x`, not
zero-padded (`0` for a zero scale). TensorRT >= 10 prefers explicit Q/DQ; the cache remains the
interchange format of implicit-quantization deployments.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import UsageError

DEFAULT_VERSION = 100300
ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")
DEFAULT_ALGORITHM = "EntropyCalibration2"
_HEADER = re.compile(r"TRT-(\d+)-(\w+)")


def scale_to_hex(scale: float) -> str:
    import numpy as np  # a lazy import: the cache's header constants are read by `--help`

    bits = struct.unpack("!I", struct.pack("!f", np.float32(scale)))[0]
    return format(bits, "x")


def hex_to_scale(text: str) -> float:
    return struct.unpack("!f", bytes.fromhex(text.zfill(8)))[0]


def amax_to_scale(amax: float):
    """float32 arithmetic, as the quantizer computes it, so cache and graph agree to the bit."""
    import numpy as np

    return np.float32(amax) / np.float32(127.0)


@dataclass(frozen=True)
class CalibrationCache:
    version: int
    algorithm: str
    scales: dict[str, float]

    def to_text(self) -> str:
        lines = [f"TRT-{self.version}-{self.algorithm}"]
        lines += [f"{name}: {scale_to_hex(scale)}" for name, scale in self.scales.items()]
        return "\n".join(lines) + "\n"

    def amax(self) -> dict[str, float]:
        import numpy as np

        return {name: float(np.float32(scale) * np.float32(127.0)) for name, scale in self.scales.items()}


def make_cache(amax: Mapping[str, float], version: int = DEFAULT_VERSION,
               algorithm: str = DEFAULT_ALGORITHM) -> CalibrationCache:
    if algorithm not in ALGORITHMS:
        raise UsageError(f"unknown TensorRT calibration algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
    return CalibrationCache(version, algorithm, {name: float(amax_to_scale(value)) for name, value in amax.items()})


def parse_cache(text: str, source: str = "calibration cache") -> CalibrationCache:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    header = _HEADER.fullmatch(lines[0]) if lines else None
    if header is None:
        raise UsageError(f"{source}: not a TensorRT calibration cache (first line should be TRT-<version>-<Algorithm>)")
    scales = {}
    for number, line in enumerate(lines[1:], start=2):
        name, sep, value = line.rpartition(": ")
        if not sep or not name or not re.fullmatch(r"[0-9a-fA-F]{1,8}", value):
            raise UsageError(f"{source}: line {number} is not 'tensor_name: hex' ({line[:60]!r})")
        scale = hex_to_scale(value)
        if not (math.isfinite(scale) and scale >= 0):
            raise UsageError(f"{source}: line {number}: the scale of {name!r} is {scale}, not a finite number >= 0")
        scales[name] = scale
    return CalibrationCache(int(header.group(1)), header.group(2), scales)
