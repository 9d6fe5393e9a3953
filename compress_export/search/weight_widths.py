"""The LLM quality budget: which weight matrices stay at higher precision. Every matrix starts at the target's
width (4-bit for onnx-int4); matrices are ranked by how much their 4-bit rounding changes their output on the
calibration text per weight a token reads (calibration.Calibration.ranking), and the best buys are promoted
(to 8 bits) in growing groups, then by bisection, until the perplexity
increase on the held-out windows holds the budget. The windows are the ones the report scores, so the search's
number is the shipped artifact's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..exporters.genai.build import WeightMatrix

HIGHER = {"MatMul": 8, "Gather": 8}  # a promoted matrix: INT8 MatMul or an 8-bit embedding table


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
                "ranking": [{"node": node, "sensitivity_per_weight_read": score}
                            for node, score in self.ranking[:20]]}


def plan(matrices: list[WeightMatrix], width: int, promoted: set[str]) -> dict[str, int | None]:
    return {m.node: (HIGHER[m.op] if m.node in promoted else width) for m in matrices}


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
