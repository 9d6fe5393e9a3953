"""Runtimes: a runner per way of executing a model, opened by the runtime name an artifact records.

Each entry names the module and class lazily, so listing runtimes imports no framework. A new runtime
is one module with a `Runner` subclass plus one line here."""

from __future__ import annotations

import importlib

from ..errors import UsageError

RUNTIMES: dict[str, str] = {
    "onnxruntime": "compress_export.runtimes.onnxruntime:OnnxRuntimeRunner",
    "litert": "compress_export.runtimes.litert:LiteRTRunner",
    "tensorrt": "compress_export.runtimes.tensorrt:TensorRTRunner",
}


def open_runner(runtime: str, path: str, threads: int | None = None):
    """A runner for the artifact at `path` (enter it as a context manager to load it)."""
    try:
        module, _, name = RUNTIMES[runtime].partition(":")
    except KeyError:
        raise UsageError(f"no runner for runtime {runtime!r}; known: {', '.join(RUNTIMES)}") from None
    return getattr(importlib.import_module(module), name)(str(path), threads)
