"""Runs a .tflite artifact in the LiteRT interpreter: named signature inputs and outputs, INT8 inputs
quantized and INT8 outputs dequantized with each tensor's own scale and zero point."""

from __future__ import annotations

import numpy as np

from ..errors import ExportError, require
from ..util.native_output import captured_native_output
from .base import Runner


def _signature(path: str, threads: int | None = None):
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
        # Loaded once here for the names, and reused by the first activate().
        self._runner = _signature(self.path, threads)
        self._signature_inputs = sorted(self._runner.get_input_details(), key=_output_order)
        self._inputs = list(self._signature_inputs)
        self._outputs = sorted(self._runner.get_output_details(), key=_output_order)

    def infer(self, feeds):
        """Inputs by name; where the signature names them by position (`args_0`, ... from litert-torch),
        the feeds are taken in the order given."""
        if not all(name in feeds for name in self._signature_inputs) and len(feeds) == len(self._signature_inputs):
            feeds = dict(zip(self._signature_inputs, feeds.values(), strict=True))
        return super().infer(feeds)

    def activate(self) -> None:
        if self._runner is None:
            self._runner = _signature(self.path, self.threads)
        self._in = self._runner.get_input_details()
        self._out = self._runner.get_output_details()
        # A batch fixed at conversion (litert-torch without a dynamic batch) is fed in slices of that size.
        fixed = {int(d["shape_signature"][0]) for d in self._in.values() if len(d["shape_signature"])} - {-1}
        self._fixed_batch = fixed.pop() if len(fixed) == 1 else None

    def deactivate(self) -> None:
        self._runner = None

    def _run(self, feeds: dict) -> dict:
        return _run_signature(self._runner, feeds)

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        prepared = {name: _to_tensor(value, self._in[name]) for name, value in feeds.items()}
        rows = len(next(iter(prepared.values())))
        step = self._fixed_batch
        if step and step != rows and rows % step == 0:
            parts = [self._run({name: value[start:start + step] for name, value in prepared.items()})
                     for start in range(0, rows, step)]
            produced = {name: np.concatenate([part[name] for part in parts]) for name in self._outputs}
        else:
            produced = self._run(prepared)
        return {name: _from_tensor(produced[name], self._out[name]) for name in self._outputs}


def _run_signature(runner, feeds: dict) -> dict:
    try:
        return runner(**feeds)
    except (RuntimeError, ValueError) as exc:  # a kernel that cannot prepare or run this artifact
        raise ExportError(f"LiteRT cannot run the artifact: {str(exc).strip().splitlines()[0][:300]}") from None


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
