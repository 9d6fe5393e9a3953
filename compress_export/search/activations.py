"""Quality budget: better ranges first, then the fewest activations kept in float.

The unit is the activation tensor: onnxruntime quantizes a tensor when its producer or any consumer
is quantized, so a tensor stays float only when all of them do. A configuration (other ranges for some
tensors, some tensors in float) is evaluated without re-running the quantizer: the exported graph's
scales are rewritten, or its Q/DQ pairs bypassed, and the held-out subsample runs against the
original model's outputs. For a target that exports again with its fallback nodes, the trials that decide
are that export (`Evaluator.build`); ranking trials stay rewrites, on fewer samples.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import onnx

from ..exporters.onnx.qdq_rewrites import with_float_tensors, with_tensor_ranges
from ..metrics import all_gates, all_metrics
from ..metrics.gates import Gates, meets, ranking_key
from ..metrics.gates import score as gate_scores
from .local_error import TRIAL_LIMIT, rank_by_local_error
from .search_result import RangeChoice, SearchResult
from .trial_session import trial_session, trial_suite, trial_workers

COST_FLOOR = 0.02  # a share of the model's MACs: see `order`
MAX_SWEEPS = 3  # of `requantize`: on the YOLOv8 detector the second took 28 float tensors to 21, the third none


@dataclass
class Evaluator:
    """Scores configurations on a held-out subsample with the run's metrics and gates. A score holds each
    gate's worst value under its score key (`cosine`, `accuracy_drop`, ...); the ranking of tensors uses
    `cosine`, the one signal every task has."""

    quantized: onnx.ModelProto
    original: onnx.ModelProto
    batches: list  # (feeds, labels, reference outputs)
    gates: Gates
    metrics: tuple = ()  # the task's metrics; empty: every registered one
    runtime: str = "onnxruntime"  # the artifact's: trials compute what the shipped artifact's runner computes
    costs: Mapping[str, dict] = field(default_factory=dict)  # speed_costs(): what floating a tensor costs
    confirm: list = field(default_factory=list)  # the whole validation set, when the subsample is a part of it
    rank_batches: list = field(default_factory=list)  # a smaller part for ranking tensors one by one; empty: batches
    sampler: object = None  # the image generator's sampler: each trial's denoiser makes images through it
    # (float tensors, ranges) -> the graph the target exports with them, None where that would leave nothing in
    # INT8; unset: the QDQ graph with those pairs bypassed, which is what a rewriting target ships
    build: Callable[[list[str], Mapping[str, tuple[float, float]]], onnx.ModelProto | None] | None = None
    evaluations: int = 0
    confirmations: int = 0
    deadline: float | None = None  # time.perf_counter() past which refinements stop (a met budget stays met)
    stopped: bool = False  # a refinement stopped at the deadline
    estimating: bool = False  # every trial a bypass of the first export, also where the target exports again

    def out_of_time(self) -> bool:
        self.stopped = self.stopped or (self.deadline is not None and time.perf_counter() > self.deadline)
        return self.stopped

    def score(self, float_tensors: Iterable[str], ranges: Mapping[str, tuple[float, float]] | None = None) -> dict:
        """The configuration's score on the subsample; where that meets the budget, on the whole validation set
        (the number the shipped artifact reads): a subsample that just meets it says nothing of the rest."""
        session = self._session(float_tensors, ranges, exact=True)
        self.evaluations += 1
        if session is None:
            return unbuildable()
        values = self._run(session, self.batches)
        if self.confirm and meets(self.gates, values):
            values = self._run(session, self.confirm)
            self.confirmations += 1
        return values

    def bypass_score(self, float_tensors: Iterable[str], ranges: Mapping[str, tuple[float, float]] | None = None
                     ) -> dict:
        """The score with those pairs bypassed in the first export's graph: an estimate for ranking and for what
        the weights' rounding alone costs, where the target builds its trials by exporting again."""
        if self.build is None or self.estimating:
            return self.score(float_tensors, ranges)
        self.evaluations += 1
        return self._run(self._session(float_tensors, ranges, exact=False), self.batches)

    def rank_score(self, float_tensors: Iterable[str], ranges: Mapping[str, tuple[float, float]] | None = None
                   ) -> dict:
        """A ranking trial: only the order of tensors depends on it, so it reads fewer samples."""
        if not self.rank_batches:
            return self.bypass_score(float_tensors, ranges)
        self.evaluations += 1
        return self._run(self._session(float_tensors, ranges, exact=False), self.rank_batches)

    def rank_scores(self, configurations: Sequence[list[str]], ranges: Mapping[str, tuple[float, float]] | None
                    ) -> Iterator[dict]:
        """rank_score of each configuration, in order; on the ranking's samples, several at once where there are
        cores for them (each on one core, the baseline too, so the gains compare like with like)."""
        workers = trial_workers()
        if not self.rank_batches or workers == 1:
            yield from (self.rank_score(floated, ranges) for floated in configurations)
            return

        def trial(floated: list[str]) -> dict:
            return self._run(self._session(floated, ranges, exact=False, threads=1), self.rank_batches)

        with ThreadPoolExecutor(workers) as pool:
            for score in pool.map(trial, configurations):
                self.evaluations += 1
                yield score

    def _session(self, float_tensors: Iterable[str], ranges: Mapping[str, tuple[float, float]] | None, exact: bool,
                 threads: int | None = None):
        if exact and self.build is not None and not self.estimating:
            model = self.build(list(float_tensors), ranges or {})
            if model is None:
                return None
        else:
            model = with_float_tensors(with_tensor_ranges(self.quantized, ranges or {}), self.original,
                                       float_tensors)
        return trial_session(model, self.runtime, threads)

    def _run(self, session, batches) -> dict:
        return gate_scores(*trial_suite(session, batches, self.metrics or all_metrics(), self.sampler))

    def meets(self, score: dict) -> bool:
        return meets(self.gates, score)

    def quality(self, score: dict) -> tuple:
        """Orders scores: meeting the budget first, then the gates' values in registry order."""
        return ranking_key(self.gates, score)


def unbuildable() -> dict:
    """The score of a configuration the target cannot build: every gate at its worst, so it never meets a budget."""
    return {gate.score_key: -math.inf if gate.higher_is_better else math.inf for gate in all_gates()}


def rank_tensors(evaluator: Evaluator, candidates: Sequence[str], baseline: dict,
                 ranges: Mapping[str, tuple[float, float]] | None = None,
                 on_step: Callable[[], None] | None = None) -> list[dict]:
    """Each tensor's effect: the score with it alone in float (the others quantized), best value first:
    the cosine it wins for the share of INT8 work it sends back to float."""
    ranking = []
    own_baseline = bool(evaluator.rank_batches)  # the gains are differences of two scores on the same samples
    scores = evaluator.rank_scores([[]] * own_baseline + [[name] for name in candidates], ranges)
    if own_baseline:
        baseline = next(scores)
    for name, score in zip(candidates, scores, strict=True):
        cost = evaluator.costs.get(name, {})
        ranking.append({"tensor": name, "cosine_if_float": score["cosine"],
                        "cosine_gain": score["cosine"] - baseline["cosine"], "accuracy_drop_if_float":
                        score["accuracy_drop"], "macs_share": cost.get("macs_share", 0.0),
                        "float_compute": cost.get("nodes", [])})
        if on_step:
            on_step()
    order(ranking)
    return ranking


def order(ranking: list[dict]) -> None:
    """Most cosine per share of MACs first; a floor on the share keeps a free tensor with a tiny gain from
    outranking one that buys most of the budget for a little speed. Gains <= 0 come last."""
    ranking.sort(key=lambda row: (-row["cosine_gain"] / (row["macs_share"] + COST_FLOOR), row["tensor"]))


def choose_method(evaluator: Evaluator, by_method: Mapping[str, Mapping[str, tuple[float, float]]],
                  current: str, baseline: dict, candidates: Sequence[str]) -> RangeChoice:
    """Score every calibrator's ranges for all quantized tensors at once; keep the best."""
    choice = RangeChoice(current, {current: baseline})
    best = baseline
    for method, table in by_method.items():
        if method == current:
            continue
        ranges = {name: table[name] for name in candidates if name in table}
        score = evaluator.score([], ranges)
        choice.scores[method] = score
        if evaluator.quality(score) > evaluator.quality(best):
            best, choice.method, choice.ranges = score, method, ranges
    return choice


def refine_per_tensor(evaluator: Evaluator, by_method: Mapping[str, Mapping[str, tuple[float, float]]],
                      choice: RangeChoice, tensors: Sequence[str], score: dict) -> dict:
    """For the most sensitive tensors, try each calibrator's range for that tensor alone; keep what helps.
    Outliers after GELU or in residual sums often want a different clip than the rest of the graph."""
    for name in tensors:
        for method, table in by_method.items():
            current = choice.per_tensor.get(name, choice.method)
            if method == current or name not in table:
                continue
            trial = {**choice.ranges, name: table[name]}
            candidate = evaluator.bypass_score([], trial)
            if evaluator.quality(candidate) > evaluator.quality(score):
                score, choice.ranges = candidate, trial
                choice.per_tensor[name] = method
        if evaluator.meets(score):
            break
    # the choice as the target builds it, when its trials export again (the loop above read cheap rewrites)
    return score if evaluator.build is None or not choice.per_tensor else evaluator.score([], choice.ranges)


def rerank(evaluator: Evaluator, ranking: list[dict], before: dict, after: dict, choice: RangeChoice) -> list[dict]:
    """The ranking after per-tensor ranges changed: the changed tensors are scored again; for the rest,
    floating them is assumed to gain what it did before."""
    rows = []
    for row in ranking:
        if row["tensor"] in choice.per_tensor:
            score = evaluator.bypass_score([row["tensor"]], choice.ranges)
            if_float = score["cosine"]
        else:
            if_float = row["cosine_if_float"] + after["cosine"] - before["cosine"]
        rows.append({**row, "cosine_if_float": if_float, "cosine_gain": if_float - after["cosine"]})
    order(rows)
    return rows


def search_budget(evaluator: Evaluator, candidates: Sequence[str],
                  by_method: Mapping[str, Mapping[str, tuple[float, float]]], current_method: str,
                  refine: int = 8, on_step: Callable[[], None] | None = None) -> SearchResult:
    """Meet the budget with the least float: other calibrators' ranges for the whole graph, then per
    tensor for the most sensitive ones, then the most sensitive tensors back to float one at a time, never
    all of them; when that misses a budget that every activation in float meets, back to INT8 from there
    (`requantize`). Otherwise no setting meets the budget, and the result says so."""
    start = time.perf_counter()
    baseline = evaluator.score([])

    def result(kept: list[str], score: dict, choice: RangeChoice | None, ranking: list[dict]) -> SearchResult:
        return SearchResult(float_tensors=kept, met=evaluator.meets(score), baseline=baseline, final=score,
                            range_choice=choice, ranking=ranking, seconds=time.perf_counter() - start,
                            evaluations=evaluator.evaluations, stopped=evaluator.stopped)

    if evaluator.meets(baseline):
        return result([], baseline, None, [])
    choice, score = None, baseline
    if by_method:
        choice = choose_method(evaluator, by_method, current_method, baseline, candidates)
        score = choice.scores[choice.method]
        if evaluator.meets(score):
            return result([], score, choice, [])
    ranges = choice.ranges if choice else {}
    if len(candidates) > TRIAL_LIMIT:
        ranking = rank_by_local_error(evaluator, candidates, score, ranges)
    else:
        ranking = rank_tensors(evaluator, candidates, score, ranges, on_step)
    if choice and refine:
        sensitive = [row["tensor"] for row in ranking[:refine] if row["cosine_gain"] > 0]
        refined = refine_per_tensor(evaluator, by_method, choice, sensitive, score)
        ranges = choice.ranges
        if evaluator.meets(refined):
            return result([], refined, choice, ranking)
        ranking = rerank(evaluator, ranking, score, refined, choice)
        score = refined
    kept, score, met = shortest_prefix(evaluator, [row["tensor"] for row in ranking], ranges, score, on_step)
    if met and "local_error" in ranking[0]:  # an estimated order: back to INT8 whatever the budget allows
        kept, score = requantize(evaluator, ranking[:len(kept)], score, ranges, on_step) or (kept, score)
    elif met:
        # A tensor that gained nothing alone is in the prefix only by its place: back to INT8 where the budget allows
        for row in ranking[:len(kept)]:
            if row["cosine_gain"] <= 0 and len(kept) > 1:
                rest = [name for name in kept if name != row["tensor"]]
                trial = evaluator.score(rest, ranges)
                if evaluator.meets(trial):
                    kept, score = rest, trial
    if met:
        return result(kept, score, choice, ranking)
    if not candidates:
        return result(kept, score, choice, ranking)
    limit = weight_limit(evaluator, candidates, ranges)
    if limit["reachable"]:
        # No prefix of the ranking met the budget though all in float does: come from the other end.
        back = requantize(evaluator, ranking, limit["every_activation_float"], ranges, on_step)
        if back and len(back[0]) < len(ranking):  # an artifact with nothing in INT8 is not this target's
            kept, score = back
    searched = result(kept, score, choice, ranking)
    searched.weight_limit = limit
    return searched


def shortest_prefix(evaluator: Evaluator, ranked: Sequence[str], ranges: Mapping[str, tuple[float, float]],
                    score: dict, on_step: Callable[[], None] | None = None, start: int = 0
                    ) -> tuple[list[str], dict, bool]:
    """The shortest prefix of the ranking whose tensors in float meet the budget: doubling, then halving the gap
    (a few trials where one per tensor took minutes on a detector); `score` is the first `start` tensors' score,
    known to miss. Never the whole ranking: at least one activation stays quantized. Past the deadline the halving
    stops at a prefix that meets it. When no prefix meets it: the best one tried, and False."""
    longest = len(ranked) - 1
    tried: dict[int, dict] = {start: score}

    def trial(length: int) -> dict:
        if length not in tried:
            tried[length] = evaluator.score(ranked[:length], ranges)
            if on_step:
                on_step()
        return tried[length]

    missed, length = start, min(max(2 * start, 1), longest)
    while length < longest and not evaluator.meets(trial(length)):
        missed, length = length, min(2 * length, longest)
    if length <= start or not evaluator.meets(trial(length)):
        best = max(tried, key=lambda key: evaluator.quality(tried[key]))
        return list(ranked[:best]), tried[best], False
    while length - missed > 1 and not evaluator.out_of_time():
        middle = (missed + length) // 2
        if evaluator.meets(trial(middle)):
            length = middle
        else:
            missed = middle
    return list(ranked[:length]), tried[length], True


def requantize(evaluator: Evaluator, ranking: Sequence[dict], every: dict,
               ranges: Mapping[str, tuple[float, float]], on_step: Callable[[], None] | None = None
               ) -> tuple[list[str], dict] | None:
    """From the ranking's tensors all in float (which meets the budget), quantize tensors back while the budget
    holds, the most MACs first (the most speed back; ties: the least cosine gained in float first): a group at a
    time, halved where it misses, so that a graph whose float set is small takes a few dozen trials, not one per
    tensor; in sweeps until one brings none back: effects do not add up, so a tensor refused early can fit once
    others are back. None when no tensor can be quantized again."""
    kept, score = [row["tensor"] for row in ranking], every
    order = [row["tensor"] for row in sorted(ranking, key=lambda row: (-row["macs_share"], row["cosine_gain"],
                                                                          row["tensor"]))]

    def bring_back(group: list[str]) -> None:
        nonlocal kept, score
        if len(kept) < len(ranking) and evaluator.out_of_time():  # stop only once something is back in INT8
            return
        rest = [name for name in kept if name not in group]
        trial = evaluator.score(rest, ranges)
        if on_step:
            on_step()
        if evaluator.meets(trial):
            kept, score = rest, trial
        elif len(group) > 1:
            for half in _halves(group):
                bring_back(half)

    for _ in range(MAX_SWEEPS):
        before = len(kept)
        for half in _halves([name for name in order if name in kept]):  # all of them back is the baseline: missed
            bring_back(half)
        if len(kept) == before:
            break
    return None if len(kept) == len(ranking) else (kept, score)


def _halves(group: list[str]) -> list[list[str]]:
    middle = (len(group) + 1) // 2
    return [part for part in (group[:middle], group[middle:]) if part]


def weight_limit(evaluator: Evaluator, candidates: Sequence[str], ranges: Mapping[str, tuple[float, float]]) -> dict:
    """The score with every activation in float (only the weights rounded) and the gates it misses. Effects do
    not add up, so missing them here does not prove a partly quantized graph cannot meet them (rounding can
    also cancel); meeting them here is what lets the search come from the float end."""
    every = evaluator.bypass_score(candidates, ranges)
    missed = [{"gate": gate.name, "value": every.get(gate.score_key), "limit": evaluator.gates.limits[gate.name]}
              for gate in all_gates()
              if not gate.passes(every.get(gate.score_key), evaluator.gates.limits[gate.name])]
    return {"every_activation_float": every, "reachable": not missed, "missed": missed}
