"""The budget search for a target that exports again with its fallback nodes in float (trt-int8: its placement
rules, FP16 float layers and overflow guard): a trial that decides is that export plus a run in the target's
runtime, about 100 s on a 45 MB denoiser on two cores, and a search decided that way took the better part of an
hour. So the search runs on estimates (the first export's graph with the pairs bypassed, seconds a trial), and
exports only to confirm what the estimates chose; where the export misses what the estimate met, longer prefixes
of the ranking are exported until one meets the budget."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from .activations import Evaluator, search_budget, shortest_prefix
from .search_result import SearchResult

ESTIMATE_SHARE = 0.6  # of the time limit, for the search on estimates; the rest confirms by exporting


def search_estimated(evaluator: Evaluator, candidates: Sequence[str],
                     by_method: Mapping[str, Mapping[str, tuple[float, float]]], current_method: str,
                     on_step: Callable[[], None] | None = None) -> SearchResult:
    start = time.perf_counter()
    deadline = evaluator.deadline
    evaluator.estimating = True
    if deadline is not None:
        evaluator.deadline = start + ESTIMATE_SHARE * max(deadline - start, 0.0)
    try:
        estimated = search_budget(evaluator, candidates, by_method, current_method, on_step=on_step)
    finally:
        evaluator.estimating, evaluator.deadline = False, deadline
    estimate_stopped, evaluator.stopped = evaluator.stopped, False  # the estimates' deadline is not the search's
    ranges = estimated.range_choice.ranges if estimated.range_choice else {}
    kept = list(estimated.float_tensors)
    exact = evaluator.score(kept, ranges)
    if estimated.met and not evaluator.meets(exact):
        ranked = kept + [row["tensor"] for row in estimated.ranking if row["tensor"] not in kept]
        kept, exact, _ = shortest_prefix(evaluator, ranked, ranges, exact, on_step, start=len(kept))
    if not evaluator.meets(exact) and evaluator.quality(exact) < evaluator.quality(estimated.baseline):
        # Nothing met the budget and the export of the estimate's best reads worse than the first export (the
        # baseline, itself an export): ship the first export, not a worse graph.
        kept, exact, estimated.range_choice = [], estimated.baseline, None
    estimated.float_tensors, estimated.final, estimated.met = kept, exact, evaluator.meets(exact)
    estimated.seconds, estimated.evaluations, estimated.stopped = (time.perf_counter() - start, evaluator.evaluations,
                                                                   estimate_stopped or evaluator.stopped)
    return estimated
