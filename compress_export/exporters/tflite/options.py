"""TFLite settings: the input and output type of full-INT8 models."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TfliteOptions:
    io: str = "int8"  # "int8", or "float32" (the model quantizes and dequantizes at its edges)
