"""A compression method that this module alone adds to the tool: its class, its option and one registration line.
It multiplies every weight of a PyTorch model by --scale-weights FACTOR, so a test can see its option in `--help`,
its place in the run and its report section, and the change in the exported weights."""

from __future__ import annotations

import copy

from compress_export.compression import METHODS
from compress_export.compression.base import Compressed, CompressionMethod
from compress_export.specs import OptionSpec


class ScaleWeights(CompressionMethod):
    name = "scale-weights"
    title = "Scaled weights"
    options = (OptionSpec("--scale-weights", "Multiply every weight of the model by this factor.", "float", minimum=0,
                          min_open=True, metavar="FACTOR"),)

    def settings(self, values, seed: int) -> float | None:
        return values["scale_weights"]

    def apply(self, job, settings: float) -> Compressed:
        import torch

        from compress_export.compression.chain import finish, starting_point
        from compress_export.sources.torch_source import TorchModel

        model, _, module = starting_point(job, "--scale-weights")
        scaled = copy.deepcopy(module).eval()
        with torch.no_grad():
            for parameter in scaled.parameters():
                parameter.mul_(settings)
        tuned = TorchModel(scaled, model.description, model.sha256, model.inputs)
        return finish(job, tuned, {"factor": settings}, "model.scaled.onnx")

    def markdown(self, section: dict, report) -> list[str]:
        return [f"Every weight multiplied by {section['factor']:g}."]


METHODS[ScaleWeights.name] = f"{__name__}:ScaleWeights"
