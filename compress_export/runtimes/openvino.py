"""Runs an OpenVINO IR (.xml + .bin) or an ONNX file in OpenVINO's CPU plugin.

FP32 graphs run in FP32: the plugin's default on CPUs with bfloat16 or FP16 units is to compute in those, which
would make the FP32 reference itself a lower-precision model. Quantized graphs (FakeQuantize from Q/DQ pairs) run
in INT8 either way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import ExportError, UsageError, require
from .base import Runner

DATA_PROBLEMS = ("shape", "dimension", "element type", "precision", "rank")


def openvino():
    return require("openvino", "openvino")


def read_model(source):
    """The model at a path (IR or ONNX) or an in-memory onnx.ModelProto, or one line saying why OpenVINO cannot
    read it. Signed activation Q/DQ pairs are read as the equal unsigned pairs (openvino_qdq.py says why)."""
    ov = openvino()
    what = Path(source).name if isinstance(source, (str, Path)) else "the model"
    source = _unsigned_activations(source)
    try:
        if isinstance(source, (str, Path)):
            return ov.Core().read_model(str(source))
        return ov.Core().read_model(source.SerializeToString(), b"")
    except Exception as exc:  # the frontends raise their own types (GeneralFailure, OpConversionFailure)
        raise ExportError(f"OpenVINO cannot read {what}: {first_line(exc)}") from None


def _unsigned_activations(source):
    """`source`, or an ONNX copy of it whose signed activation pairs are unsigned."""
    from .openvino_qdq import openvino_readable, signed_activation_pairs, unsigned_activations

    if isinstance(source, (str, Path)):
        return (openvino_readable(str(source)) if Path(source).suffix == ".onnx" else None) or source
    if not signed_activation_pairs(source):
        return source
    import onnx

    copied = onnx.ModelProto()
    copied.CopyFrom(source)
    unsigned_activations(copied)
    return copied


# How every model of ours is compiled, and what each IR we write carries as its runtime options, so a user's plain
# `compile_model` runs what was validated: FP32 arithmetic (not bf16 on CPUs that have it), and no dynamic
# quantization of the activations that feed weight-quantized layers (OpenVINO's default for such layers: it
# re-quantizes the activations the search kept in float, cosine 0.89 against onnxruntime on the planted outlier).
EXACT_OPTIONS = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}


def compile_model(model, threads: int | None = None):
    ov = openvino()
    config = {"PERFORMANCE_HINT": "LATENCY", **EXACT_OPTIONS}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    try:
        return ov.Core().compile_model(model, "CPU", config)
    except Exception as exc:
        raise ExportError(f"OpenVINO cannot compile the model: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # OpenVINO's messages open with "Exception from src/...cpp:123:" and a check's text before the cause
    useful = [line for line in lines if not line.startswith(("Exception from", "Check '", "[ GENERAL_ERROR ]"))]
    return (useful or lines or [type(exc).__name__])[0][:300]


class _Port(NamedTuple):
    """An input as data/layout.py reads one: its name and shape (None where the dimension is dynamic)."""

    name: str
    shape: list


class Session:
    """A compiled OpenVINO model run with sample-major feeds, like runtimes.ort_session.Session."""

    def __init__(self, model, threads: int | None = None, what: str = "the model"):
        self.what = what
        self.model = model
        self.inputs = [_Port(port.get_any_name(), _dims(port)) for port in model.inputs]
        self.output_names = [port.get_any_name() for port in model.outputs]
        self.request = compile_model(model, threads).create_infer_request()

    def get_inputs(self) -> list[_Port]:
        return self.inputs

    def get_outputs(self) -> list[_Port]:
        return [_Port(name, []) for name in self.output_names]

    def run(self, names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]) -> list:
        from ..data.layout import model_feeds, sample_major_outputs

        feeds, moved = model_feeds(dict(feeds), self.inputs)
        try:
            # np.asarray, not np.ascontiguousarray: that one turns a scalar input into shape [1].
            results = self.request.infer({name: np.asarray(value, order="C") for name, value in feeds.items()})
        except Exception as exc:
            message = first_line(exc)
            if any(word in message.lower() for word in DATA_PROBLEMS):
                raise UsageError(f"the data does not fit {self.what}: {message}") from None
            raise ExportError(f"OpenVINO failed running {self.what}: {message}") from None
        by_name = {}
        for port, value in results.items():
            for name in port.get_names():
                by_name[name] = np.array(value)
        return sample_major_outputs([by_name[name] for name in (names or self.output_names)], moved)


def _dims(port) -> list:
    return [dim.get_length() if dim.is_static else None for dim in port.get_partial_shape()]


class OpenVinoRunner(Runner):
    name = "openvino"

    def __init__(self, path: str, threads: int | None = None):
        super().__init__()
        self.path = str(path)
        self.threads = threads
        self._model = read_model(self.path)
        self._inputs = [port.get_any_name() for port in self._model.inputs]
        self._outputs = [port.get_any_name() for port in self._model.outputs]
        self._session: Session | None = None

    def activate(self) -> None:
        self._session = Session(self._model, self.threads, Path(self.path).name)

    def deactivate(self) -> None:
        self._session = None

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._outputs, self._session.run(self._outputs, feeds), strict=True))
