"""Runs an ONNX artifact in onnxruntime: on the CPU, or on the execution provider `--provider` names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ExportError
from .base import Runner
from .ort_session import Session
from .providers import artifact_providers


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def __init__(self, path: str, threads: int | None = None):
        super().__init__()
        self.path = str(path)
        self.threads = threads
        self._session = None
        import onnx

        try:
            model = onnx.load(self.path, load_external_data=False)
        except Exception as exc:  # protobuf's decode errors, a truncated file
            raise ExportError(f"{self.path}: not a readable ONNX model ({str(exc).splitlines()[0][:200]})") from None
        initializers = {init.name for init in model.graph.initializer}
        self._inputs = [i.name for i in model.graph.input if i.name not in initializers]
        self._outputs = [o.name for o in model.graph.output]

    def activate(self) -> None:
        self._session = Session(self.path, session_options(self.name, self.threads), Path(self.path).name,
                                providers=artifact_providers() if self.name == OnnxRuntimeRunner.name else None)

    def deactivate(self) -> None:
        self._session = None

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._outputs, self._session.run(self._outputs, feeds), strict=True))


class ExactQdqRunner(OnnxRuntimeRunner):
    """A QDQ graph as written: each DequantizeLinear computed, then the float op, no fused integer kernel.
    The arithmetic a TensorRT engine does (INT8 products, exact accumulation), where onnxruntime's fused
    signed-INT8 kernels can saturate on CPUs without VNNI. For validating artifacts made for another runtime."""

    name = "onnxruntime-exact"


def session_options(runtime: str = "onnxruntime", threads: int | None = None):
    """The onnxruntime options of a runtime, for anything that must compute what its runner computes (the
    budget search's trial graphs)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # Spinning worker threads keep their cores busy after a run; with sessions timed in turns (the benchmark's
    # interleaving) they steal the next session's cores, and a model against itself measured 0.4x on 16 cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if runtime == ExactQdqRunner.name:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return options

