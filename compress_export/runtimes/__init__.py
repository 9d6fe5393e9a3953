"""Runtimes: a runner per way of executing a model, opened by the runtime name an artifact records.

Each entry names the module and class lazily, so listing runtimes imports no framework. A new runtime
is one module with a `Runner` subclass plus one line here."""

from __future__ import annotations

from ..errors import UsageError
from ..util.lazy import resolve

RUNTIMES: dict[str, str] = {
    "onnxruntime": "compress_export.runtimes.onnxruntime:OnnxRuntimeRunner",
    "onnxruntime-exact": "compress_export.runtimes.onnxruntime:ExactQdqRunner",
    "openvino": "compress_export.runtimes.openvino:OpenVinoRunner",
    "litert": "compress_export.runtimes.litert:LiteRTRunner",
    "tensorrt": "compress_export.runtimes.tensorrt:TensorRTRunner",
    "onnxruntime-genai": "compress_export.runtimes.onnxruntime_genai:GenaiRunner",
}


def open_runner(runtime: str, path: str, threads: int | None = None):
    """A runner for the artifact at `path` (enter it as a context manager to load it)."""
    if runtime not in RUNTIMES:
        raise UsageError(f"no runner for runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    return resolve(RUNTIMES[runtime])(str(path), threads)
