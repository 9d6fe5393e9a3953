"""2:4 structured sparsity in PyTorch: in every group of four consecutive weights along a layer's input (reduction)
dimension the two largest in magnitude stay and two become zero, the pattern sparse tensor cores (NVIDIA Ampere and
later) run at up to twice the dense rate. The masks are chosen once; fine-tuning multiplies them back in after
every step, so the pattern survives training."""

from __future__ import annotations

PATTERNS = ("2:4",)
GROUP, KEEP = 4, 2


def eligible(layer) -> bool:
    """Linear layers and ungrouped convolutions whose input width is a multiple of four (TensorRT's rule: the
    groups run along the input channels)."""
    import torch

    if isinstance(layer, torch.nn.Linear):
        return layer.in_features % GROUP == 0
    if isinstance(layer, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Conv3d):
        return layer.groups == 1 and layer.in_channels % GROUP == 0
    return False


def mask_2_4(weight):
    """1 where a weight is among the two largest |w| of its group of four along dim 1, else 0."""
    import torch

    moved = weight.detach().movedim(1, -1)  # [out, *kernel, in]
    groups = moved.abs().reshape(-1, GROUP)
    keep = groups.topk(KEEP, dim=1).indices
    mask = torch.zeros_like(groups).scatter_(1, keep, 1.0)
    return mask.reshape(moved.shape).movedim(-1, 1).contiguous()


def masks_2_4(module) -> dict[str, object]:
    """The mask of every eligible layer, by module name."""
    return {name: mask_2_4(layer.weight) for name, layer in module.named_modules() if eligible(layer)}


def apply_masks(module, masks: dict) -> None:
    import torch

    with torch.no_grad():
        for name, mask in masks.items():
            weight = module.get_submodule(name).weight
            weight.mul_(mask.to(weight.device, weight.dtype))
