"""`--prune RATIO`: structured pruning of a PyTorch model (channels of convolutions, hidden neurons of expanding
Linear layers) before export; every target is built from the pruned model, and `--distill` recovers it."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from ..specs import OptionSpec
from .base import Compressed, CompressionMethod
from .chain import finish, stage_row, stage_table, stages_before, starting_point
from .prune_torch import IMPORTANCES, KINDS


@dataclass(frozen=True)
class PruneSettings:
    ratio: float
    importance: str = "magnitude"
    kinds: tuple[tuple[str, float], ...] = ()  # only these kinds of layers, each at its ratio (conv, ffn)


def prune_kinds(spec: str | None, ratio: float | None) -> tuple[tuple[str, float], ...]:
    """"conv=0.3,ffn" -> (("conv", 0.3), ("ffn", ratio))."""
    if not spec:
        return ()
    if ratio is None:
        raise UsageError("--prune-kinds refines --prune RATIO: give --prune too")
    found = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, value = item.partition("=")
        if name not in KINDS:
            raise UsageError(f"--prune-kinds: unknown kind {name!r}; known: {', '.join(KINDS)}")
        try:
            found.append((name, float(value) if value else ratio))
        except ValueError:
            raise UsageError(f"--prune-kinds: {item!r}: the ratio after '=' is a number such as 0.3") from None
    return tuple(found)


class StructuredPruning(CompressionMethod):
    name = "prune"
    title = "Pruning"
    makes_student = True
    model_kinds = ("torch", "language-model")
    options = (
        OptionSpec("--prune", "Structured pruning of a PyTorch model before export: remove this fraction of the "
                   "channels of each convolution and of the hidden neurons of each expanding Linear (transformer "
                   "FFNs), with every coupled layer (torch-pruning's DepGraph). Every target is built from the pruned "
                   "model.",
                   "float", minimum=0, maximum=1, min_open=True, max_open=True, metavar="RATIO"),
        OptionSpec("--prune-importance", "--prune: rank channels by weight norm (language models: weighted by how "
                   "strongly the calibration text drives each neuron), or by |weight x gradient| on a calibration "
                   "batch.", "choice", IMPORTANCES[0], IMPORTANCES),
        OptionSpec("--prune-kinds", "--prune: only these kinds of layers, each at its own ratio (default --prune's): "
                   "conv (convolution channels), ffn (hidden neurons of expanding Linears), heads (a language model's "
                   "attention heads, whole key/value groups), e.g. conv=0.3,ffn=0.5 or ffn=0.25,heads=0.34.",
                   metavar="KIND[=RATIO],..."),
    )

    def settings(self, values, seed: int) -> PruneSettings | None:
        ratio = values["prune"]
        kinds = prune_kinds(values["prune_kinds"], ratio)
        return None if ratio is None else PruneSettings(ratio, values["prune_importance"], kinds)

    def refuse_for(self, kind: str, settings: PruneSettings) -> None:
        kinds = {name for name, _ in settings.kinds}
        if kind == "language-model" and kinds - {"ffn", "heads"}:
            raise UsageError("--prune-kinds: a language model prunes ffn (MLP hidden neurons) and heads (attention "
                             "heads, whole key/value groups), not conv")
        if kind != "language-model" and "heads" in kinds:
            raise UsageError("--prune-kinds heads prunes a language model's attention heads; for this model give "
                             "conv or ffn")

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

        pruned, counts = prune(module, example, call, settings.ratio, settings.importance, output_energy,
                       dict(settings.kinds) or None)
        tuned = TorchModel(pruned, model.description, model.sha256, model.inputs)
        done = finish(job, tuned, {"settings": settings.__dict__, **counts}, "model.pruned.onnx")
        done.section["stages"] = [*stages_before(job), stage_row(job, "pruned", tuned, done.fp32_onnx)]
        return done

    def markdown(self, section: dict, report) -> list[str]:
        ratios = ", ".join(f"{kind} {value:.0%}" for kind, value in section.get("kinds", {}).items())
        whole = section.get("left_whole") or []
        kept = [f"Left whole (pruning them would break what the model's code expects, such as a split of fixed "
                f"sizes): {', '.join(whole)}.", ""] if whole else []
        return [f"{section['pruned_layers']} layers lost {ratios or format(section['ratio'], '.0%')} of their channels "
                f"({section['importance']} importance): parameters {section['parameters_before']:,} -> "
                f"{section['parameters_after']:,}.", "", *kept, *stage_table(section["stages"], report)]
