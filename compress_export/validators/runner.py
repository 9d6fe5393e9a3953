"""The runner interface every backend implements: a context manager with `infer(feeds)`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from ..errors import UsageError


class Runner(ABC):
    name = "runner"

    def __init__(self) -> None:
        self._active = False
        self._inputs: list[str] = []
        self._outputs: list[str] = []

    @property
    def input_names(self) -> list[str]:
        return self._inputs

    @property
    def output_names(self) -> list[str]:
        return self._outputs

    def __enter__(self) -> Runner:
        self.activate()
        self._active = True
        return self

    def __exit__(self, *exc_info) -> None:
        self._active = False
        self.deactivate()

    def activate(self) -> None:
        """Load what is heavy; called on entering the context."""

    def deactivate(self) -> None:
        """Release it."""

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self._active:
            raise RuntimeError(f"{self.name} runner used outside its context")
        missing = [name for name in self.input_names if name not in feeds]
        if missing:
            raise UsageError(f"{self.name}: missing input(s) {', '.join(missing)}")
        return self.infer_impl({name: feeds[name] for name in self.input_names})

    @abstractmethod
    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def __init__(self, path: str, threads: int | None = None):
        super().__init__()
        self.path = str(path)
        self.threads = threads
        self._session = None
        import onnx

        model = onnx.load(self.path, load_external_data=False)
        initializers = {init.name for init in model.graph.initializer}
        self._inputs = [i.name for i in model.graph.input if i.name not in initializers]
        self._outputs = [o.name for o in model.graph.output]

    def activate(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        self._session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])

    def deactivate(self) -> None:
        self._session = None

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._outputs, self._session.run(self._outputs, feeds), strict=True))
