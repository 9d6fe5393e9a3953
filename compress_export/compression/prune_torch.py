"""Structured pruning of a PyTorch module with torch-pruning's dependency graph (DepGraph): whole output channels
of convolutions and whole hidden neurons of expanding Linear layers (a transformer's FFN, an MLP's hidden
layer) go, and every layer coupled to them (the next layer's inputs, norms, residual partners, concats,
depthwise groups) shrinks with them, so the dense model really gets smaller. The library tracks those
couplings; hand-written surgery would have to know every architecture."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UsageError, require

IMPORTANCES = ("magnitude", "taylor")
KINDS = ("conv", "ffn")  # convolution channels; hidden neurons of expanding Linear layers (FFNs, MLPs)


def kind_of(layer) -> str:
    import torch

    return "conv" if isinstance(layer, torch.nn.Conv1d | torch.nn.Conv2d) else "ffn"


def prunable_layers(module, example, call: Callable) -> tuple[list, list]:
    """(roots, kept): convolutions and expanding Linear layers are roots, unless they write a model output;
    every other Linear/Conv stays as a root (it shrinks only where a root's channels reach it). Attention's
    square projections stay whole: pruning a head needs the head layout, which a generic module lacks."""
    import torch

    written: dict[int, object] = {}
    hooks = [layer.register_forward_hook(lambda layer, _i, out: written.__setitem__(id(out), layer))
             for layer in module.modules() if isinstance(layer, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Linear)]
    try:
        with torch.no_grad():
            outputs = call(module, example)
    finally:
        for hook in hooks:
            hook.remove()
    final = {id(written[id(out)]) for out in _tensors(outputs) if id(out) in written}
    roots, kept = [], []
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv1d | torch.nn.Conv2d):
            (kept if id(layer) in final or layer.out_channels < 4 else roots).append(layer)
        elif isinstance(layer, torch.nn.Linear):
            expanding = layer.out_features > layer.in_features
            (roots if expanding and id(layer) not in final else kept).append(layer)
    return roots, kept


def _tensors(value):
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)
    elif hasattr(value, "to_tuple"):  # transformers' ModelOutput
        yield from _tensors(value.to_tuple())


def prune(module, example, call: Callable, ratio: float, importance: str, loss: Callable | None = None,
          kinds: dict[str, float] | None = None) -> dict:
    """Remove `ratio` of each root's channels in place. `example`: the inputs `call(module, example)` takes.
    "taylor" scores channels by |weight x gradient| of `loss(outputs)` on the example (the data decides);
    "magnitude" by their weights' L2 norm. `kinds` ({"conv": 0.3, "ffn": 0.5}): only the roots of these kinds,
    each at its own ratio. Returns the counts before and after."""
    tp = require("torch_pruning", "prune")
    import torch

    if not 0 < ratio < 1:
        raise UsageError(f"--prune {ratio}: give a fraction of channels between 0 and 1, such as 0.5")
    roots, kept = prunable_layers(module, example, call)
    if kinds:
        kept = kept + [layer for layer in roots if kind_of(layer) not in kinds]
        roots = [layer for layer in roots if kind_of(layer) in kinds]
        for value in kinds.values():
            if not 0 < value < 1:
                raise UsageError(f"--prune-kinds: ratio {value} is not between 0 and 1")
    if not roots:
        wanted = " or ".join(kinds) if kinds else "convolution or expanding Linear"
        raise UsageError(f"--prune found no {wanted} layer to prune in this model")
    before = sum(parameter.numel() for parameter in module.parameters())
    scorer = tp.importance.GroupTaylorImportance() if importance == "taylor" else \
        tp.importance.GroupMagnitudeImportance(p=2)
    ratios = {layer: kinds[kind_of(layer)] for layer in roots} if kinds else None
    pruner = tp.pruner.BasePruner(module, example, importance=scorer, pruning_ratio=ratio, ignored_layers=kept,
                                  pruning_ratio_dict=ratios, forward_fn=lambda model, inputs: call(model, inputs))
    if importance == "taylor":
        module.zero_grad()
        with torch.enable_grad():
            loss(call(module, example)).backward()
    pruner.step()
    module.zero_grad()
    after = sum(parameter.numel() for parameter in module.parameters())
    return {"parameters_before": before, "parameters_after": after, "pruned_layers": len(roots),
            "ratio": ratio, "importance": importance, **({"kinds": dict(kinds)} if kinds else {})}
