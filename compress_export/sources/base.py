"""What every loaded model offers the pipeline: its inputs, an FP32 ONNX export, a reference runner."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from ..runtimes.base import Runner
from ..specs import TensorSpec


class LoadedModel(ABC):
    framework = "unknown"
    task: str | None = None  # what the source knows the model does (a checkpoint's architecture); None: detect

    def __init__(self, description: str, sha256: str, inputs: tuple[TensorSpec, ...]):
        self.description = description
        self.sha256 = sha256
        self.inputs = inputs

    @abstractmethod
    def export_onnx(self, path: Path, example: dict) -> None:
        """Write the FP32 ONNX model (one file, dynamic batch) to `path`."""

    @abstractmethod
    def reference_runner(self) -> Runner:
        """A runner of the original model, the ground truth for parity."""

    def describe(self) -> dict:
        return {
            "model": self.description,
            "framework": self.framework,
            "sha256": self.sha256,
            "inputs": [spec.to_dict() for spec in self.inputs],
            **getattr(self, "details", {}),
        }
