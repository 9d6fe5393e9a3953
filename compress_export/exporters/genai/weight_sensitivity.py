"""How much each matrix's 4-bit rounding costs the language-model loss, for the budget search's ranking: on the
calibration windows, the PyTorch model's gradient g of the loss at each weight matrix's output and the output change
the rounding makes there, Δy = x·ΔW; the loss moves by about g·Δy per token, and Σ (g·Δy)² over tokens (a Fisher
estimate) says which matrices matter. A layer's own relative output error does not: on SmolLM2 it is flat across
matrices while their effect on perplexity is not.

Matrices are matched to the model's Linear and Embedding weights by value (the ONNX weight is the module's,
transposed for a Linear), so no per-architecture naming is assumed. A MatMul that is several Linears side by side
(a fused q/k/v projection) is scored per Linear, as pieces the search can promote on their own: in SmolLM2's fused
q/k/v the v columns (a fifth of the weights) cost about 70% of its perplexity at 4 bits. If any ONNX matrix
matches no module, there is no ranking by loss (None), and the search falls back to output error per matrix.

The LM head (the model's output embeddings) is scored in runs of vocabulary columns, VOCAB_RUNS and the rest:
tokenizers number frequent tokens first, and their columns carry most of the head's 4-bit cost (SmolLM2: the
first 512 of 49152 columns, 1% of the weights, 42% of its score on the calibration text), so promoting that run
alone buys most of what promoting the whole head would, at a fiftieth of its decode cost."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .build import WeightMatrix, piece

CORNER = 8  # entries per side compared when matching weights by value
VOCAB_RUNS = (512, 2048, 8192)  # where the LM head's column runs end (the last run takes the rest)


@dataclass(frozen=True)
class Edges:
    """The first and last CORNER rows of a weight as the ONNX node reads it: enough to find its module by value."""
    top: np.ndarray
    bottom: np.ndarray

    @classmethod
    def of(cls, weight: np.ndarray) -> Edges:
        return cls(weight[:CORNER].copy(), weight[-CORNER:].copy())

    def matches(self, module_weight: np.ndarray, offset: int = 0) -> bool:
        """Whether `module_weight` (as the node reads it) sits at columns offset.. of this weight."""
        width = module_weight.shape[1]
        return (offset + width <= self.top.shape[1]
                and np.array_equal(module_weight[:CORNER, :CORNER], self.top[:, offset:offset + min(width, CORNER)])
                and np.array_equal(module_weight[-CORNER:, -CORNER:],
                                   self.bottom[:, offset + width - min(width, CORNER):offset + width]))


@dataclass
class LossSensitivity:
    units: list[WeightMatrix]  # the matrices, a fused MatMul replaced by its pieces (build.piece)
    scores: dict[str, float]  # unit -> Σ (g·Δy)²


def loss_sensitivity(folder: Path, matrices: list[WeightMatrix], edges: dict[str, Edges],
                     rounded: dict[str, np.ndarray], spans: list[np.ndarray]) -> LossSensitivity | None:
    """Σ (g·Δy)² of every matrix in `rounded` (node -> its rounded weight as the ONNX node reads it, [K, N] for a
    MatMul, [rows, hidden] for a Gather), per module for a fused MatMul; `edges` of the original weights find the
    modules; None where a matrix matches no module."""
    import torch

    from ...sources.causal_lm import float_model

    model = float_model(folder).eval()
    scored = [m for m in matrices if m.node in rounded]
    parts = _match(model, scored, edges)
    if parts is None:
        return None
    head = model.get_output_embeddings()
    for node, found in parts.items():
        if len(found) == 1 and found[0][0] is head:
            parts[node] = vocabulary_runs(*found[0])
    names = {id(module): name for name, module in model.named_modules()}
    units: list[WeightMatrix] = []
    window: dict[str, torch.Tensor] = {}  # node -> Σ over its parts of g·Δy, per token of this window
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    # the gradient flows from the embedding output on: no parameter gradients are kept
    handles = [model.get_input_embeddings().register_forward_hook(lambda _m, _i, out: out.requires_grad_(True))]
    for matrix in scored:
        pieces = parts[matrix.node]
        weight = torch.from_numpy(np.ascontiguousarray(rounded[matrix.node], dtype=np.float32))
        for module, op, offset, width, first in pieces:
            part = weight[:, offset:offset + width] if op == "MatMul" else weight
            unit = matrix if len(pieces) == 1 else piece(matrix, offset, offset + width, names.get(id(module)))
            units.append(unit)
            handles.append(module.register_forward_hook(_score(part, op, window, unit.node, first)))
    totals = {unit.node: 0.0 for unit in units}
    try:
        for ids in spans:
            batch = torch.from_numpy(np.asarray(ids, dtype=np.int64))[None]
            model(input_ids=batch, labels=batch).loss.backward()
            for node, per_token in window.items():
                totals[node] += float((per_token.double() ** 2).sum())
            window.clear()
    finally:
        for handle in handles:
            handle.remove()
    return LossSensitivity(units, totals)


def vocabulary_runs(module, op: str, offset: int, width: int, first: int) -> list[tuple]:
    """The LM head's part split into runs of columns ending at VOCAB_RUNS (those inside its width)."""
    ends = [end for end in VOCAB_RUNS if end < width] + [width]
    starts = [0, *ends[:-1]]
    return [(module, op, offset + start, end - start, first + start) for start, end in zip(starts, ends, strict=True)]


def _score(rounded, op: str, window: dict, node: str, first: int = 0):
    """A forward hook: the change the rounded weight makes at this module's output columns first.. (x·W' - (y - b)
    for a Linear, W'[ids] - y for an Embedding), dotted per token with the loss gradient there when backward
    reaches it."""
    columns = slice(first, first + rounded.shape[1])

    def hook(module, args, output):
        exact = output.detach().reshape(-1, output.shape[-1])[:, columns]
        if op == "MatMul":
            x = args[0].detach()
            bias = module.bias.detach()[columns] if module.bias is not None else 0.0
            change = x.reshape(-1, x.shape[-1]) @ rounded - (exact - bias)
        else:
            change = rounded[args[0].reshape(-1)] - exact

        def record(grad):
            per_token = (grad.reshape(-1, grad.shape[-1])[:, columns] * change).sum(dim=1)
            window[node] = window[node] + per_token if node in window else per_token
        if output.requires_grad:
            output.register_hook(record)
    return hook


def _match(model, matrices: list[WeightMatrix], edges: dict[str, Edges]) -> dict | None:
    """{node: [(module, op, first column, columns, the module's first output column)]} by value: a MatMul's [K, N]
    weight is one Linear's weight transposed or several side by side (a fused q/k/v projection), a Gather's table an
    Embedding's weight."""
    import torch

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    embeddings = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    found = {}
    for matrix in matrices:
        edge = edges[matrix.node]
        rows = matrix.shape[0]
        if matrix.op != "MatMul":
            module = next((m for m in embeddings if m.weight.shape[0] == rows
                           and edge.matches(m.weight.detach().numpy())), None)
            if module is None:
                return None
            found[matrix.node] = [(module, matrix.op, 0, module.weight.shape[1], 0)]
            continue
        pieces, offset = [], 0
        while offset < edge.top.shape[1]:
            module = next((m for m in linears if m.in_features == rows
                           and edge.matches(m.weight.detach().numpy().T, offset)), None)
            if module is None:
                return None
            pieces.append((module, matrix.op, offset, module.out_features, 0))
            offset += module.out_features
        found[matrix.node] = pieces
    return found
