"""Runs a PyTorch module in inference mode: the reference side of parity for PyTorch models."""

from __future__ import annotations

import numpy as np

from ..errors import ExportError
from ..specs import TensorSpec
from .base import Runner


def flatten_outputs(result, inputs=()) -> list[tuple[str, object]]:
    """(name, tensor) of what a module returns; a dict key that names an input too (diffusers' UNet2DModel returns
    `sample` from an input `sample`) gets `_out`, since an ONNX graph cannot give two tensors one name."""
    import torch

    if isinstance(result, torch.Tensor):
        return [("output", result)]
    if isinstance(result, dict) or hasattr(result, "items"):
        return [(f"{key}_out" if str(key) in inputs else str(key), value) for key, value in result.items()
                if isinstance(value, torch.Tensor)]
    if isinstance(result, list | tuple):
        return [(f"output_{index}", value) for index, value in enumerate(result) if isinstance(value, torch.Tensor)]
    raise ExportError(f"the model returned {type(result).__name__}; return a tensor, a tuple or a dict of tensors")


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, module, inputs: tuple[TensorSpec, ...], by_keyword: bool):
        super().__init__()
        self.module = module
        self.inputs = inputs
        self.by_keyword = by_keyword
        self._inputs = [spec.name for spec in inputs]

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in feeds.items()}
        with torch.inference_mode():
            if self.by_keyword:
                result = self.module(**tensors)
            else:
                result = self.module(*[tensors[name] for name in self.input_names])
        named = flatten_outputs(result, self._inputs)
        self._outputs = [name for name, _ in named]
        return {name: value.detach().cpu().numpy() for name, value in named}
