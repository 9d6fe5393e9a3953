"""Structured pruning of a PyTorch module with torch-pruning's dependency graph (DepGraph): whole output channels
of convolutions and whole hidden neurons of expanding Linear layers (a transformer's FFN, an MLP's hidden
layer) go, and every layer coupled to them (the next layer's inputs, norms, residual partners, concats,
depthwise groups) shrinks with them, so the dense model really gets smaller. The library tracks those
couplings; hand-written surgery would have to know every architecture."""

from __future__ import annotations

import copy
from collections.abc import Callable

from ..errors import UsageError, require

IMPORTANCES = ("magnitude", "taylor")
KINDS = ("conv", "ffn", "heads")  # convolution channels; hidden neurons of expanding Linears; a language model's heads


def kind_of(layer) -> str:
    import torch

    return "conv" if isinstance(layer, torch.nn.Conv1d | torch.nn.Conv2d) else "ffn"


def prunable_layers(module, example, call: Callable) -> tuple[list, list]:
    """(roots, kept): convolutions and expanding Linear layers are roots, unless they write a model output;
    every other Linear/Conv stays as a root (it shrinks only where a root's channels reach it). Attention's
    square projections stay whole: pruning a head needs the head layout, which a generic module lacks."""
    import torch

    written: dict[object, object] = {}  # each layer's output grad_fn -> the layer
    hooks = [layer.register_forward_hook(lambda layer, _i, out: written.__setitem__(out.grad_fn, layer))
             for layer in module.modules() if isinstance(layer, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Linear)]
    try:
        with torch.enable_grad():
            outputs = call(module, example)
    finally:
        for hook in hooks:
            hook.remove()
    final = _output_layers([out.grad_fn for out in _tensors(outputs)], written)
    roots, kept = [], []
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv1d | torch.nn.Conv2d):
            (kept if id(layer) in final or layer.out_channels < 4 else roots).append(layer)
        elif isinstance(layer, torch.nn.Linear):
            expanding = layer.out_features > layer.in_features
            (roots if expanding and id(layer) not in final else kept).append(layer)
    return roots, kept


def _output_layers(roots: list, written: dict) -> set[int]:
    """ids of the layers whose channels reach a model output with no other Conv/Linear in between (through
    concats, views, splits, activations, decoding arithmetic): their widths are the model's."""
    found, seen, stack = set(), set(), [fn for fn in roots if fn is not None]
    while stack:
        fn = stack.pop()
        if fn in seen:
            continue
        seen.add(fn)
        if fn in written:
            found.add(id(written[fn]))
            continue
        stack.extend(next_fn for next_fn, _ in getattr(fn, "next_functions", ()) if next_fn is not None)
    return found


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
          kinds: dict[str, float] | None = None) -> tuple[object, dict]:
    """A pruned copy of `module` with `ratio` of each root's channels removed, and the counts before and after.
    `example`: the inputs `call(module, example)` takes. "taylor" scores channels by |weight x gradient| of
    `loss(outputs)` on the example (the data decides); "magnitude" by their weights' L2 norm. `kinds`
    ({"conv": 0.3, "ffn": 0.5}): only the roots of these kinds, each at its own ratio.
    Every coupled group is pruned on its own and the model run after it: a group after which the outputs
    change shape or the forward fails is left whole (named in `left_whole`) and pruning starts again without
    it, so what comes back always runs and has the original's output shapes."""
    require("torch_pruning", "prune")
    if not 0 < ratio < 1:
        raise UsageError(f"--prune {ratio}: give a fraction of channels between 0 and 1, such as 0.5")
    for value in (kinds or {}).values():
        if not 0 < value < 1:
            raise UsageError(f"--prune-kinds: ratio {value} is not between 0 and 1")
    probe = {name: value[:1] for name, value in example.items()}
    expected = output_shapes(module, probe, call)
    left_whole: list[str] = []
    while True:
        work = copy.deepcopy(module).eval()
        roots, kept = _roots_of(work, example, call, kinds, left_whole)
        broken = _prune_groups(work, example, probe, call, roots, kept, ratio, importance, loss, kinds, expected)
        if broken is None:
            break
        left_whole.append(broken)
    if output_shapes(work, example, call) != output_shapes(module, example, call):
        raise UsageError("--prune: the pruned model's outputs differ in shape from the original's on a full "
                         "calibration batch; prune fewer layers with --prune-kinds")
    before = sum(parameter.numel() for parameter in module.parameters())
    after = sum(parameter.numel() for parameter in work.parameters())
    return work, {"parameters_before": before, "parameters_after": after, "pruned_layers": len(roots),
                  "ratio": ratio, "importance": importance, "left_whole": left_whole,
                  **({"kinds": dict(kinds)} if kinds else {})}


def _roots_of(module, example, call: Callable, kinds: dict | None, left_whole: list[str]) -> tuple[list, list]:
    roots, kept = prunable_layers(module, example, call)
    if kinds:
        kept = kept + [layer for layer in roots if kind_of(layer) not in kinds]
        roots = [layer for layer in roots if kind_of(layer) in kinds]
    names = {id(layer): name for name, layer in module.named_modules()}
    whole = [layer for layer in roots if names[id(layer)] in left_whole]
    roots = [layer for layer in roots if names[id(layer)] not in left_whole]
    if not roots and not left_whole:
        wanted = " or ".join(kinds) if kinds else "convolution or expanding Linear"
        raise UsageError(f"--prune found no {wanted} layer to prune in this model")
    if not roots:
        raise UsageError(f"--prune: no layer of this model can be pruned consistently (left whole: "
                         f"{', '.join(left_whole)})")
    return roots, kept + whole


def _prune_groups(module, example, probe, call, roots, kept, ratio, importance, loss, kinds,
                  expected) -> str | None:
    """Prune `module` group by group; the name of the first group's root that breaks it, or None."""
    import torch
    import torch_pruning as tp

    from .channel_offsets import exact_channel_offsets

    scorer = tp.importance.GroupTaylorImportance() if importance == "taylor" else \
        tp.importance.GroupMagnitudeImportance(p=2)
    ratios = {layer: kinds[kind_of(layer)] for layer in roots} if kinds else None
    pruner = tp.pruner.BasePruner(module, example, importance=scorer, pruning_ratio=ratio, ignored_layers=kept,
                                  pruning_ratio_dict=ratios, forward_fn=lambda model, inputs: call(model, inputs))
    exact_channel_offsets(pruner.DG)
    if importance == "taylor":
        module.zero_grad()
        with torch.enable_grad():
            loss(call(module, example)).backward()
    names = {id(layer): name for name, layer in module.named_modules()}
    current = {}
    estimate = pruner.estimate_importance

    def scored(group):  # the group being ranked is the one to blame when ranking fails
        current["root"] = group[0].dep.target.module
        return estimate(group)

    pruner.estimate_importance = scored
    groups = pruner.step(interactive=True)
    try:
        while True:
            try:
                group = next(groups, None)
                if group is None:
                    return None
                current["root"] = group[0].dep.target.module
                group.prune()
                intact = output_shapes(module, probe, call) == expected
            except Exception:  # noqa: BLE001 - surgery the library cannot apply leaves that group whole
                intact = False
            if not intact:
                root = current.get("root")
                return names.get(id(root), type(root).__name__)
    finally:
        module.zero_grad()


def output_shapes(module, inputs, call: Callable) -> list[tuple]:
    """Every tensor output's shape, in order (names come from the order of the outputs)."""
    import torch

    with torch.no_grad():
        return [tuple(tensor.shape) for tensor in _tensors(call(module, inputs))]
