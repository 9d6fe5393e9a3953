"""PyTorch models: nn.Module factories, ExportedPrograms; FP32 ONNX through torch.onnx.export."""

from __future__ import annotations

import inspect
import logging
import warnings
from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..runtimes.base import Runner
from ..runtimes.torch import TorchRunner, flatten_outputs
from ..specs import TensorSpec
from ..util.quiet_logs import quiet_loggers
from .base import LoadedModel

log = logging.getLogger(__name__)
OPSET = 18


def differentiable_forward(model: TorchModel, device: str | None = None):
    """forward(module, feeds) -> {output name: tensor}, with autograd, for fine-tuning a copy of `model` (its
    inputs moved to `device` when given)."""

    def forward(module, feeds: dict[str, np.ndarray]) -> dict:
        import torch

        tensors = {spec.name: torch.from_numpy(np.ascontiguousarray(feeds[spec.name])) for spec in model.inputs}
        if device:
            tensors = {name: tensor.to(device) for name, tensor in tensors.items()}
        result = module(**tensors) if model.by_keyword else module(*tensors.values())
        return dict(flatten_outputs(result))

    return forward


class TorchModel(LoadedModel):
    framework = "torch"

    def __init__(self, module, description: str, sha256: str, inputs: tuple[TensorSpec, ...], exported=None):
        super().__init__(description, sha256, inputs)
        self.module = module
        self.exported = exported
        # An ExportedProgram's module takes its inputs positionally, in the program's order.
        self.by_keyword = exported is None and _accepts_keywords(module, [spec.name for spec in inputs])

    def reference_runner(self) -> Runner:
        return TorchRunner(self.module, self.inputs, self.by_keyword)

    def export_onnx(self, path: Path, example: dict) -> None:
        import torch

        example = _at_least_two_rows(example)
        with TorchRunner(self.module, self.inputs, self.by_keyword) as runner:
            runner.infer(example)
            output_names = runner.output_names
        tensors = {spec.name: torch.from_numpy(np.ascontiguousarray(example[spec.name])) for spec in self.inputs}
        try:
            self._export_dynamo(tensors, output_names, path)
        except Exception as dynamo_error:  # the legacy exporter covers graphs dynamo cannot capture
            log.info("torch.export could not capture the model (%s); using the TorchScript exporter", dynamo_error)
            try:
                self._export_legacy(tensors, output_names, path)
            except Exception as legacy_error:
                raise ExportError(
                    f"torch.onnx.export failed: {_first_line(dynamo_error)}; "
                    f"legacy exporter: {_first_line(legacy_error)}"
                ) from None

    def _dynamic_shapes(self):
        from torch.export import Dim

        symbols: dict[str, object] = {}
        shapes = {}
        for spec in self.inputs:
            shapes[spec.name] = {
                axis: symbols.setdefault(str(dim), Dim(_symbol(str(dim))))
                for axis, dim in enumerate(spec.shape)
                if isinstance(dim, str)
            }
        return shapes

    def _export_dynamo(self, tensors: dict, output_names: list[str], path: Path) -> None:
        import torch

        shapes = self._dynamic_shapes()
        model = self.exported if self.exported is not None else self.module
        if self.by_keyword:
            args, kwargs, dynamic = (), tensors, shapes
        else:
            args, kwargs = tuple(tensors.values()), None
            dynamic = tuple(shapes[name] for name in tensors)
        with warnings.catch_warnings(), _quiet_torch():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, args, kwargs=kwargs, input_names=list(tensors), output_names=output_names,
                dynamic_shapes=None if self.exported is not None else dynamic, dynamo=True,
                external_data=False, opset_version=OPSET, optimize=True, verbose=False,
            )
            program.save(str(path), external_data=False)

    def _export_legacy(self, tensors: dict, output_names: list[str], path: Path) -> None:
        import torch

        axes = {spec.name: {a: str(d) for a, d in enumerate(spec.shape) if isinstance(d, str)} for spec in self.inputs}
        axes.update({name: {0: "batch"} for name in output_names})
        module = self.exported.module() if self.exported is not None else self.module
        with warnings.catch_warnings(), _quiet_torch():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, tuple(tensors.values()), str(path), input_names=list(tensors), output_names=output_names,
                dynamic_axes=axes, opset_version=17, dynamo=False,
            )


def _symbol(name: str) -> str:
    return name if name.isidentifier() else "d_" + "".join(c if c.isalnum() else "_" for c in name)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _at_least_two_rows(example: dict) -> dict:
    """torch.export specialises a batch of one to a static dim; give it two rows."""
    return {name: np.concatenate([value, value]) if value.shape[0] < 2 else value for name, value in example.items()}


def _accepts_keywords(module, names: list[str]) -> bool:
    try:
        parameters = inspect.signature(module.forward).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    return all(name in parameters for name in names)


def _quiet_torch():
    """torch.onnx logs progress at INFO/WARNING through its own loggers; keep the CLI quiet."""
    return quiet_loggers("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript", "torch._export")
