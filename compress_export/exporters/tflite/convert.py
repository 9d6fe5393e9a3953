"""TensorFlow's TFLite converter, in the four modes of the TFLite targets."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ...errors import ExportError, require
from ...util.native_output import captured_native_output

MODES = ("fp32", "fp16", "dynamic", "int8")


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
