"""Targets: each registers how it turns the FP32 ONNX graph (and ranges) into an artifact."""

from .registry import TARGETS, ExportContext, Target, get_target, parse_targets

# Importing the modules registers their targets.
from . import onnx_targets  # noqa: E402,F401  isort: skip

__all__ = ["TARGETS", "ExportContext", "Target", "get_target", "parse_targets"]
