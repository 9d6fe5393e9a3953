"""Targets: each registers how it turns the FP32 ONNX graph (and ranges) into an artifact."""

from .registry import TARGETS, ExportContext, Target, TrtOptions, get_target, parse_targets

# Importing the modules registers their targets.
from . import onnx_targets  # noqa: E402,F401  isort: skip
from .tensorrt import target as tensorrt_target  # noqa: E402,F401  isort: skip
from .tflite import targets as tflite_targets  # noqa: E402,F401  isort: skip

__all__ = ["TARGETS", "ExportContext", "Target", "TrtOptions", "get_target", "parse_targets"]
