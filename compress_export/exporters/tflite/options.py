"""TFLite settings: the input and output type of full-INT8 models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ...specs import OptionSpec


@dataclass(frozen=True)
class TfliteOptions:
    io: str = "int8"  # "int8", or "float32" (the model quantizes and dequantizes at its edges)

    options: ClassVar[tuple[OptionSpec, ...]] = (
        OptionSpec("--tflite-io", "tflite-int8: input and output tensor type (float32 adds a quantize/dequantize op).",
                   "choice", "int8", ("int8", "float32")),
    )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> TfliteOptions:
        return cls(io=values["tflite_io"])
