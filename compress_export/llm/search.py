"""The LLM quality budget: which weight matrices stay at higher precision. Every matrix starts at the target's
width (4-bit for onnx-int4); matrices are ranked by how much 4-bit rounding changes their output on a held-out
window (relative error of X·W, the inputs X captured from the FP32 model), and the most sensitive are promoted
(MatMul to 8 bits, an embedding table to float) in growing groups, then by bisection, until the perplexity
increase on the held-out windows holds the budget. The windows are the ones the report scores, so the search's
number is the shipped artifact's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .build import BLOCK_SIZE, MODEL_FILE, WeightMatrix

HIGHER = {"MatMul": 8, "Gather": None}  # a promoted matrix: INT8 MatMul; a float embedding (no 8-bit Gather)


DEMOTE_TRIES = 4


@dataclass
class Trial:
    promoted: int
    perplexity_increase: float
    size_bytes: int
    bleu: float | None  # measured where the perplexity held
    met: bool
    demoted: str | None = None  # the matrix this trial put back at the target width

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class SearchResult:
    bits: dict[str, int | None]
    promoted: list[str]
    trials: list[Trial] = field(default_factory=list)
    met: bool = True
    ranking: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"promoted": self.promoted, "met": self.met, "trials": [t.to_dict() for t in self.trials],
                "ranking": [{"node": node, "output_error": error} for node, error in self.ranking[:20]]}


def plan(matrices: list[WeightMatrix], width: int, promoted: set[str]) -> dict[str, int | None]:
    return {m.node: (HIGHER[m.op] if m.node in promoted else width) for m in matrices}


def fake_quantize(weight: np.ndarray, bits: int, axis: int) -> np.ndarray:
    """Block-wise symmetric rounding along `axis` (blocks of BLOCK_SIZE), as MatMulNBits stores it."""
    moved = np.moveaxis(weight, axis, -1)
    pad = (-moved.shape[-1]) % BLOCK_SIZE
    padded = np.pad(moved, [(0, 0)] * (moved.ndim - 1) + [(0, pad)])
    blocks = padded.reshape(*padded.shape[:-1], -1, BLOCK_SIZE)
    top = 2 ** (bits - 1)
    scale = np.abs(blocks).max(axis=-1, keepdims=True) / top
    scale[scale == 0] = 1.0
    rounded = (np.clip(np.round(blocks / scale), -top, top - 1) * scale).reshape(padded.shape)
    return np.moveaxis(rounded[..., : moved.shape[-1]], -1, axis)


def rank(fp32: Path, matrices: list[WeightMatrix], ids: np.ndarray, width: int) -> list[tuple[str, float]]:
    """(node, relative output error at `width` bits), most sensitive first."""
    import onnx
    from onnx import numpy_helper

    from ..onnx_io import session_with_outputs
    from .scoring import Decoder

    model = onnx.load(str(fp32 / MODEL_FILE))
    weights = {init.name: init for init in model.graph.initializer}
    inputs = {node.name: node.input[0] if node.op_type == "MatMul" else node.input[1] for node in model.graph.node
              if node.op_type in ("MatMul", "Gather")}
    wanted = sorted({inputs[m.node] for m in matrices if m.op == "MatMul"})
    captured = session_with_outputs(model, wanted)(Decoder(fp32).feeds(ids)) if wanted else {}
    scores = []
    for matrix in matrices:
        weight = numpy_helper.to_array(weights[matrix.weight]).astype(np.float32)
        if matrix.transposed:
            weight = weight.T
        if matrix.op == "MatMul":
            x = captured[inputs[matrix.node]].reshape(-1, weight.shape[0])
            exact = x @ weight
            error = x @ (fake_quantize(weight, width, 0) - weight)
        else:  # an embedding table: the rows of the tokens read, blocks along the hidden axis
            exact = weight[np.unique(ids)]
            error = fake_quantize(exact, width, 1) - exact
        scores.append((matrix.node, float((error ** 2).sum() / max((exact ** 2).sum(), 1e-30))))
    return sorted(scores, key=lambda item: -item[1])


Evaluate = Callable[[dict[str, int | None]], tuple[float, int, float | None, bool]]


def search(matrices: list[WeightMatrix], width: int, ranking: list[tuple[str, float]],
           evaluate: Evaluate) -> SearchResult:
    """`evaluate(bits) -> (perplexity increase %, size in bytes, BLEU or None, whether the budget holds)` of a
    build. Doubling groups of the ranking, then bisection between the last miss and the first hit."""
    order = [node for node, _ in ranking]
    trials: list[Trial] = []

    def attempt(count: int) -> bool:
        trials.append(Trial(count, *evaluate(plan(matrices, width, set(order[:count])))))
        return trials[-1].met

    if attempt(0):
        return SearchResult(plan(matrices, width, set()), [], trials, True, ranking)
    low, count = 0, max(1, len(order) // 32)
    while True:
        if attempt(count):
            break
        low = count
        if count == len(order):
            return SearchResult(plan(matrices, width, set(order)), order, trials, False, ranking)
        count = min(2 * count, len(order))
    high = count
    while high - low > 1:
        middle = (low + high) // 2
        if attempt(middle):
            high = middle
        else:
            low = middle
    kept = _demote_largest(matrices, width, order[:high], evaluate, trials)
    return SearchResult(plan(matrices, width, set(kept)), kept, trials, True, ranking)


def _demote_largest(matrices, width: int, kept: list[str], evaluate: Evaluate, trials: list[Trial]) -> list[str]:
    """Speed: a promoted matrix costs in proportion to its size (an 8-bit LM head slows every token), so try the
    DEMOTE_TRIES largest promoted ones back at `width`, largest first, keeping each demotion the budget allows."""
    size = {m.node: m.parameters for m in matrices}
    kept = list(kept)
    for node in sorted(kept, key=lambda name: -size[name])[:DEMOTE_TRIES]:
        if len(kept) == 1:  # none promoted was the first trial, and it missed
            break
        trial = [name for name in kept if name != node]
        trials.append(Trial(len(trial), *evaluate(plan(matrices, width, set(trial))), demoted=node))
        if trials[-1].met:
            kept = trial
    return kept
