"""TensorFlow's TFLite converter, in the four modes of the TFLite targets."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator

from ...errors import ExportError, require

MODES = ("fp32", "fp16", "dynamic", "int8")


@contextlib.contextmanager
def captured_native_output() -> Iterator[Callable[[], str]]:
    """TensorFlow's tracing and converter print to the process's stdout and stderr from C++; keep that
    off the terminal (and off `--json` output) and hand it back for error messages."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)

        def text() -> str:
            sink.seek(0)
            return sink.read().decode(errors="replace")

        try:
            yield text
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def convert_keras(model, mode: str, representative: Callable[[], Iterator[list]] | None = None,
                  io_type: str = "int8") -> bytes:
    tf = require("tensorflow", "tflite")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_type == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    with captured_native_output() as printed:
        try:
            return converter.convert()
        except Exception as exc:  # the converter raises many types, all of them a failed conversion
            reason = _reason(str(exc) or printed())
    raise ExportError(f"TFLite conversion ({mode}) failed: {reason}")


def _reason(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if "error" in line.lower()]
    return (lines[0] if lines else text.strip().splitlines()[-1] if text.strip() else "unknown error")[:300]
