"""A runner for TensorRT engines: device buffers are torch CUDA tensors; latency from CUDA events."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MissingDependencyError, require
from .base import Runner


class TensorRTRunner(Runner):
    name = "tensorrt"

    def __init__(self, engine_path: str | Path, threads: int | None = None):  # threads: the GPU decides
        super().__init__()
        self.trt = require("tensorrt", "tensorrt")
        self.torch = require("torch", "torch")
        if not self.torch.cuda.is_available():
            raise MissingDependencyError("no CUDA device: a TensorRT engine needs a GPU")
        runtime = self.trt.Runtime(self.trt.Logger(self.trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise MissingDependencyError(f"{engine_path}: TensorRT could not load the engine (built for another "
                                         "GPU or TensorRT version? rebuild it with compress-export build-engine)")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {name: self.engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT for name in names}
        self._inputs = [name for name in names if is_input[name]]
        self._outputs = [name for name in names if not is_input[name]]
        self.last_device_ms: float | None = None

    def activate(self) -> None:
        self.context = self.engine.create_execution_context()
        self.stream = self.torch.cuda.Stream()

    def deactivate(self) -> None:
        self.context = None

    def peak_device_mb(self) -> float:
        return (self.torch.cuda.max_memory_allocated() + self.engine.device_memory_size) / 2**20

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self.torch
        keep = []
        for name in self._inputs:
            tensor = torch.from_numpy(np.ascontiguousarray(feeds[name])).cuda()
            keep.append(tensor)
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for name in self._outputs:
            dtype = torch.from_numpy(np.zeros(1, self.trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
            outputs[name] = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(self.stream):
            start.record(self.stream)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            end.record(self.stream)
        self.stream.synchronize()
        self.last_device_ms = start.elapsed_time(end)
        return {name: tensor.cpu().numpy() for name, tensor in outputs.items()}
