"""Keras models (`.keras`, `.h5`): loaded without running Python code from the file unless trusted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ExportError, UsageError, require
from ..runtimes.base import Runner
from ..runtimes.keras import KerasRunner
from ..specs import TensorSpec
from ..util.hashing import sha256_files
from .base import LoadedModel


def quiet_tensorflow() -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def load_keras(path: Path, trust_code: bool):
    quiet_tensorflow()
    require("tensorflow", "tflite")
    keras = require("keras", "tflite")
    try:
        # safe_mode refuses Lambda layers: their Python bytecode is stored in the file.
        return keras.saving.load_model(str(path), compile=False, safe_mode=not trust_code)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise UsageError(f"{path}: holds a Lambda layer, whose Python code would run on load; pass "
                             "--trust-pickle if you trust its author") from None
        raise UsageError(f"{path}: cannot load the Keras model ({str(exc).splitlines()[0][:200]})") from None
    except (OSError, TypeError, KeyError) as exc:
        raise UsageError(f"{path}: cannot load the Keras model ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None


class KerasModel(LoadedModel):
    framework = "keras"

    def __init__(self, model, path: Path):
        specs = []
        for tensor in model.inputs:
            shape = tuple("batch" if index == 0 else (dim if dim is not None else f"d{index}")
                          for index, dim in enumerate(tensor.shape))
            specs.append(TensorSpec(tensor.name, shape, str(np.dtype(tensor.dtype))))
        super().__init__(str(path), sha256_files(path), tuple(specs))
        self.model = model

    def export_onnx(self, path: Path, example: dict) -> None:
        """tf2onnx, with a dynamic batch; the ONNX inputs keep the Keras input names."""
        tf = require("tensorflow", "tflite")
        tf2onnx = require("tf2onnx", "tflite")
        from ..util.native_output import captured_native_output

        signature = [tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype, name=tensor.name)
                     for tensor in self.model.inputs]
        with captured_native_output() as printed:
            try:
                proto, _ = tf2onnx.convert.from_keras(self.model, input_signature=signature, opset=17)
            except Exception as exc:  # tf2onnx raises many types, all of them a failed conversion
                reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else printed()[-300:]
                raise ExportError(f"tf2onnx could not convert the Keras model ({reason})") from None
        path.write_bytes(proto.SerializeToString())

    def reference_runner(self) -> Runner:
        return KerasRunner(self.model)

    def describe(self) -> dict:
        return {**super().describe(), "layers": len(self.model.layers)}
