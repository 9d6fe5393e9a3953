"""Structured width pruning of a causal language model's MLPs (Llama, Qwen, Mistral, Gemma, Phi-3 style: a gated
FFN `down(act(gate(x)) * up(x))`, or `fc2(act(fc1(x)))`): the same number of hidden neurons leaves every layer,
because the architecture's config holds one `intermediate_size` for all layers and the exporters read it from
there. Each layer drops its own least important neurons: by the weight norm of what a neuron writes times how
strongly the calibration text drives it (magnitude, Wanda-style), or by |activation x gradient| of the
language-model loss on calibration text (taylor). Kept widths are a multiple of the 4-bit block size, so
every later MatMul still quantizes in whole blocks."""

from __future__ import annotations

from ..errors import UsageError

MULTIPLE = 32  # the 4-bit builders' block size along K (down_proj's input)


def mlp_parts(layer) -> tuple[list, object] | None:
    """([layers whose output rows are hidden neurons], the layer whose input columns are) of a decoder layer."""
    mlp = getattr(layer, "mlp", None) or getattr(layer, "feed_forward", None)
    if mlp is None:
        return None
    if hasattr(mlp, "down_proj") and hasattr(mlp, "up_proj"):
        return [part for part in (getattr(mlp, "gate_proj", None), mlp.up_proj) if part is not None], mlp.down_proj
    if hasattr(mlp, "fc1") and hasattr(mlp, "fc2"):
        return [mlp.fc1], mlp.fc2
    return None


def decoder_layers(model) -> list:
    base = getattr(model, "model", None)
    layers = getattr(base, "layers", None) if base is not None else None
    if layers is None:
        raise UsageError("--prune on a language model needs a decoder stack at model.model.layers (Llama, Qwen, "
                         "Mistral, Gemma, Phi-3 style)")
    return list(layers)


def kept_width(width: int, ratio: float) -> int:
    keep = int(round(width * (1 - ratio) / MULTIPLE)) * MULTIPLE if width >= 2 * MULTIPLE else \
        max(1, int(round(width * (1 - ratio))))
    return min(width, max(keep, MULTIPLE if width >= 2 * MULTIPLE else 1))


def neuron_scores(model, importance: str, windows: list) -> list:
    """Per decoder layer, a score per hidden neuron (higher: keep)."""
    layers = decoder_layers(model)
    downs = [mlp_parts(layer)[1] for layer in layers]
    if importance == "taylor":
        return taylor_at_inputs(model, downs, windows)
    return [down.weight.detach().norm(dim=0) * rms for down, rms in zip(downs, input_rms(model, downs, windows),
                                                                          strict=True)]


def input_rms(model, linears: list, windows: list) -> list:
    """Per Linear, the root mean square of each input feature over the calibration windows: a neuron's weights
    count as much as the data drives them (plain weight norms drop the few neurons that carry a language model's
    massive activations: SmolLM2-135M with 25% of its MLP neurons gone by weight norm reads perplexity 3e6)."""
    import torch

    sums = [None] * len(linears)
    count = [0]

    def capture(index):
        def hook(_module, inputs, _output):
            value = inputs[0].detach().pow(2).reshape(-1, inputs[0].shape[-1]).sum(dim=0)
            sums[index] = value if sums[index] is None else sums[index] + value
            if index == 0:
                count[0] += inputs[0].reshape(-1, inputs[0].shape[-1]).shape[0]
        return hook

    handles = [linear.register_forward_hook(capture(index)) for index, linear in enumerate(linears)]
    try:
        with torch.no_grad():
            for ids in windows:
                model(input_ids=torch.as_tensor(ids, dtype=torch.long)[None])
    finally:
        for handle in handles:
            handle.remove()
    return [(value / max(count[0], 1)).sqrt() for value in sums]


def taylor_at_inputs(model, linears: list, windows: list) -> list:
    """Per Linear, Σ |input x dLoss/dinput| per input feature over the calibration windows (the LM loss)."""
    import torch

    totals = [None] * len(linears)
    handles = []
    for index, linear in enumerate(linears):
        def capture(_module, inputs, _output, index=index):
            hidden = inputs[0]
            hidden.register_hook(lambda grad, hidden=hidden, index=index: _add(totals, index, hidden, grad))
        handles.append(linear.register_forward_hook(capture))
    try:
        model.zero_grad()
        with torch.enable_grad():
            for ids in windows:
                batch = torch.as_tensor(ids, dtype=torch.long)[None]
                model(input_ids=batch, labels=batch).loss.backward()
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad()
    return totals


def _add(totals: list, index: int, hidden, grad) -> None:
    value = (hidden.detach() * grad.detach()).abs().sum(dim=tuple(range(hidden.dim() - 1)))
    totals[index] = value if totals[index] is None else totals[index] + value


def prune_mlp_width(model, ratio: float, importance: str, windows: list) -> dict:
    """Remove `ratio` of every layer's MLP hidden neurons in place; the config follows. Returns the counts."""
    import torch

    layers = decoder_layers(model)
    if any(mlp_parts(layer) is None for layer in layers):
        raise UsageError("--prune on a language model prunes MLP hidden neurons: this architecture's layers have no "
                         "gate/up/down or fc1/fc2 MLP")
    width = mlp_parts(layers[0])[1].in_features
    keep = kept_width(width, ratio)
    before = sum(p.numel() for p in model.parameters())
    scores = neuron_scores(model, importance, windows)
    with torch.no_grad():
        for layer, score in zip(layers, scores, strict=True):
            kept = torch.sort(torch.topk(score, keep).indices).values
            rows, down = mlp_parts(layer)
            for part in rows:
                _shrink(part, kept, dim=0)
            _shrink(down, kept, dim=1)
    model.config.intermediate_size = keep
    return {"parameters_before": before, "parameters_after": sum(p.numel() for p in model.parameters()),
            "pruned_layers": len(layers), "ratio": ratio, "importance": importance, "mlp_width": [width, keep],
            "left_whole": []}


def _shrink(linear, kept, dim: int) -> None:
    import torch

    weight = linear.weight.index_select(dim, kept).clone()
    linear.weight = torch.nn.Parameter(weight)
    if dim == 0:
        if linear.bias is not None:
            linear.bias = torch.nn.Parameter(linear.bias.index_select(0, kept).clone())
        linear.out_features = len(kept)
    else:
        linear.in_features = len(kept)
