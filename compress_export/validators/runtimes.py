"""Which runner opens an artifact, by the runtime named in its manifest."""

from __future__ import annotations

from .runner import Runner

RUNTIMES = ("onnxruntime", "tensorrt", "litert")


def open_runner(runtime: str, path: str, threads: int | None = None) -> Runner:
    if runtime == "onnxruntime":
        from .runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, threads)
    if runtime == "tensorrt":
        from ..exporters.tensorrt.runner import TensorRTRunner

        return TensorRTRunner(path)
    if runtime == "litert":
        from ..exporters.tflite.runner import LiteRTRunner

        return LiteRTRunner(path, threads)
    from ..errors import UsageError

    raise UsageError(f"no runner for runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
