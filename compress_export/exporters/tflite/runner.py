"""Runs a .tflite artifact in the LiteRT interpreter: named signature inputs and outputs, INT8 inputs
quantized and INT8 outputs dequantized with each tensor's own scale and zero point."""

from __future__ import annotations

import numpy as np

from ...errors import require
from ...validators.runner import Runner


def _signature(path: str, threads: int | None = None):
    from .convert import captured_native_output

    module = require("ai_edge_litert.interpreter", "tflite")
    with captured_native_output():  # "INFO: Created TensorFlow Lite XNNPACK delegate" on every load
        return module.Interpreter(model_path=path, num_threads=threads or None).get_signature_runner()


def io_description(path: str) -> dict:
    """Each input's and output's dtype and quantization, for the report and manifest."""
    runner = _signature(path)

    def describe(details: dict) -> dict:
        return {name: {"dtype": np.dtype(d["dtype"]).name, "shape": [int(v) for v in d["shape_signature"]],
                       "scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1])}
                for name, d in details.items()}

    return {"inputs": describe(runner.get_input_details()), "outputs": describe(runner.get_output_details())}


class LiteRTRunner(Runner):
    name = "litert"

    def __init__(self, path: str, threads: int | None = None):
        super().__init__()
        self.path = str(path)
        self.threads = threads
        self._runner = None
        runner = _signature(self.path)
        self._inputs = list(runner.get_input_details())
        self._outputs = sorted(runner.get_output_details(), key=_output_order)

    def activate(self) -> None:
        self._runner = _signature(self.path, self.threads)
        self._in = self._runner.get_input_details()
        self._out = self._runner.get_output_details()

    def deactivate(self) -> None:
        self._runner = None

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        prepared = {name: _to_tensor(value, self._in[name]) for name, value in feeds.items()}
        produced = self._runner(**prepared)
        return {name: _from_tensor(produced[name], self._out[name]) for name in self._outputs}


def _output_order(name: str) -> tuple:
    prefix, _, number = name.rpartition("_")
    return (prefix, int(number)) if number.isdigit() else (name, 0)


def _to_tensor(value: np.ndarray, details: dict) -> np.ndarray:
    dtype = np.dtype(details["dtype"])
    scale, zero_point = details["quantization"]
    if np.issubdtype(dtype, np.integer) and scale and np.issubdtype(value.dtype, np.floating):
        info = np.iinfo(dtype)
        return np.clip(np.round(value / scale) + zero_point, info.min, info.max).astype(dtype)
    return np.ascontiguousarray(value, dtype=dtype)


def _from_tensor(value: np.ndarray, details: dict) -> np.ndarray:
    scale, zero_point = details["quantization"]
    if np.issubdtype(value.dtype, np.integer) and scale:
        return ((value.astype(np.float32) - zero_point) * scale).astype(np.float32)
    return np.asarray(value)
