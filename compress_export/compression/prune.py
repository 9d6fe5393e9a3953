"""`--prune RATIO`: structured pruning of a PyTorch model (channels of convolutions, hidden neurons of expanding
Linear layers) before export; every target is built from the pruned model, and `--distill` recovers it."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from .base import Compressed, CompressionMethod
from .stages import finish, stage_row, stage_table, stages_before, starting_point


@dataclass(frozen=True)
class PruneSettings:
    ratio: float
    importance: str = "magnitude"
    kinds: tuple[tuple[str, float], ...] = ()  # only these kinds of layers, each at its ratio (conv, ffn)


class StructuredPruning(CompressionMethod):
    name = "prune"
    title = "Pruning"

    def apply(self, job, settings: PruneSettings) -> Compressed:
        import torch

        from ..runtimes.torch import flatten_outputs
        from ..sources.torch_source import TorchModel
        from .prune_torch import prune

        model, _, module = starting_point(job, "--prune")
        sample = next(job.calib.batches())
        example = {spec.name: torch.from_numpy(sample[spec.name]) for spec in model.inputs}

        def call(net, inputs):
            return net(**inputs) if model.by_keyword else net(*inputs.values())

        def output_energy(outputs):  # taylor's label-free loss: each channel's share of the outputs' energy
            tensors = [tensor for _, tensor in flatten_outputs(outputs) if tensor.dtype.is_floating_point]
            return sum(t.pow(2).mean() / t.detach().pow(2).mean().clamp(min=1e-12) for t in tensors)

        pruned = copy.deepcopy(module).eval()
        counts = prune(pruned, example, call, settings.ratio, settings.importance, output_energy,
                       dict(settings.kinds) or None)
        tuned = TorchModel(pruned, model.description, model.sha256, model.inputs)
        done = finish(job, tuned, {"settings": settings.__dict__, **counts}, "model.pruned.onnx")
        done.section["stages"] = [*stages_before(job), stage_row(job, "pruned", tuned, done.fp32_onnx)]
        return done

    def markdown(self, section: dict, report) -> list[str]:
        ratios = ", ".join(f"{kind} {value:.0%}" for kind, value in section.get("kinds", {}).items())
        return [f"{section['pruned_layers']} layers lost {ratios or format(section['ratio'], '.0%')} of their channels "
                f"({section['importance']} importance): parameters {section['parameters_before']:,} -> "
                f"{section['parameters_after']:,}.", "", *stage_table(section["stages"], report)]
