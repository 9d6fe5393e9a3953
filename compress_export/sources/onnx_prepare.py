"""The FP32 working graph of a shipped ONNX model. Published models often keep weights in `Constant` nodes,
BatchNorm unfused and an opset below 13; onnxruntime's quantizer then asks for ranges of weights and
cannot place per-channel Q/DQ. onnxruntime's own quantization pre-processing (constant folding, Conv+BN
fusion, shape inference; numerically the same graph) and onnx's version converter fix that. A step that
fails is skipped and said; the export check then compares the result with the shipped model."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

import onnx

from ..graphs.onnx_io import needs_external_data, save
from ..graphs.selection import default_opset
from .graph_rewrites import rewrite_graph

MIN_QDQ_OPSET = 13  # DequantizeLinear's axis (per-channel weights) and today's Squeeze/Unsqueeze forms


def prepare_graph(source: Path, target: Path, feeds: dict | None = None) -> list[str]:
    """Write the working graph of `source` to `target`; returns what was done, for the report. With sample `feeds`,
    the rewrites that leave fewer float operations in its INT8 forms (graph_rewrites.py) are tried and checked."""
    notes = []
    with tempfile.TemporaryDirectory(prefix="ce-prepare-") as tmp:
        processed = Path(tmp) / "processed.onnx"
        try:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            with _silent_logging():  # it logs a traceback at ERROR before raising; the report says why
                quant_pre_process(str(source), str(processed), skip_symbolic_shape=True,
                                  save_as_external_data=needs_external_data(source))
            model = onnx.load(str(processed))
            notes.append("onnxruntime's quantization pre-processing: constants folded into initializers, Conv+"
                         "BatchNorm fused, shapes inferred")
        except Exception as exc:  # its failures come from many layers (optimizer, shape inference, protobuf)
            model = onnx.load(str(source))
            notes.append(f"onnxruntime's pre-processing skipped: {_first_line(exc)}")
        model, converted = _with_qdq_opset(model)
        if converted:
            notes.append(converted)
        model, rewritten = rewrite_graph(model, feeds)
        save(model, target)
    notes += rewritten
    return notes


@contextlib.contextmanager
def _silent_logging():
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _with_qdq_opset(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str | None]:
    version = default_opset(model, MIN_QDQ_OPSET)
    if version >= MIN_QDQ_OPSET:
        return model, None
    try:
        from onnx import version_converter

        converted = version_converter.convert_version(model, MIN_QDQ_OPSET)
        onnx.checker.check_model(converted)
        return converted, f"opset {version} converted to {MIN_QDQ_OPSET} (per-channel Q/DQ needs it)"
    except Exception as exc:  # the converter raises on ops it has no adapter for
        return model, f"opset {version} kept (conversion to {MIN_QDQ_OPSET} failed: {_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
