"""Attention-head pruning of a causal language model from its config's head layout: whole grouped-query groups go
(one key/value head with the query heads that read it), so grouped-query attention stays grouped; every layer
loses the same number of groups, because the config holds one head count for all layers. A group's importance is
what it writes: the output projection's columns weighted by how strongly the calibration text drives them
(magnitude), or |activation x gradient| of the language-model loss there (taylor)."""

from __future__ import annotations

from ..errors import UsageError
from .lm_width import _shrink, decoder_layers


def head_layout(model) -> tuple[int, int, int]:
    """(query heads, key/value heads, head size) from the config."""
    config = model.config
    heads = config.num_attention_heads
    groups = getattr(config, "num_key_value_heads", None) or heads
    size = getattr(config, "head_dim", None) or config.hidden_size // heads
    return heads, groups, size


def _projections(layer):
    attention = getattr(layer, "self_attn", None)
    names = ("q_proj", "k_proj", "v_proj", "o_proj")
    if attention is None or not all(hasattr(attention, name) for name in names):
        raise UsageError("--prune-kinds heads needs separate q/k/v/o projections (Llama, Qwen, Mistral, Gemma style)")
    return [getattr(attention, name) for name in names]


def group_scores(model, importance: str, windows: list) -> list:
    heads, groups, size = head_layout(model)
    per_group = heads // groups
    layers = decoder_layers(model)
    if importance == "taylor":
        from .lm_width import taylor_at_inputs

        found = taylor_at_inputs(model, [_projections(layer)[3] for layer in layers], windows)
        return [value.view(groups, per_group * size).sum(dim=1) for value in found]
    from .lm_width import input_rms

    outputs = [_projections(layer)[3] for layer in layers]
    return [(o.weight.detach().norm(dim=0) * rms).view(groups, per_group * size).sum(dim=1)
            for o, rms in zip(outputs, input_rms(model, outputs, windows), strict=True)]


def prune_heads(model, ratio: float, importance: str, windows: list) -> dict:
    """Remove `ratio` of every layer's key/value groups (with their query heads) in place; the config follows."""
    import torch

    heads, groups, size = head_layout(model)
    keep = max(1, int(round(groups * (1 - ratio))))
    if keep == groups:
        raise UsageError(f"--prune-kinds heads={ratio:g}: this model has {groups} key/value groups per layer, so "
                         f"that ratio removes none; give a larger ratio")
    per_group = heads // groups
    before = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        for layer, score in zip(decoder_layers(model), group_scores(model, importance, windows), strict=True):
            kept = torch.sort(torch.topk(score, keep).indices).values
            q_rows = torch.cat([torch.arange(g * per_group * size, (g + 1) * per_group * size) for g in kept.tolist()])
            kv_rows = torch.cat([torch.arange(g * size, (g + 1) * size) for g in kept.tolist()])
            q, k, v, o = _projections(layer)
            _shrink(q, q_rows, dim=0)
            _shrink(k, kv_rows, dim=0)
            _shrink(v, kv_rows, dim=0)
            _shrink(o, q_rows, dim=1)
    model.config.num_attention_heads, model.config.num_key_value_heads = keep * per_group, keep
    model.config.head_dim = size  # it was implied by hidden_size / heads, which no longer holds
    return {"heads": [heads, keep * per_group], "key_value_heads": [groups, keep], "head_dim": size,
            "parameters_before": before, "parameters_after": sum(p.numel() for p in model.parameters())}
