"""Quality budget: better ranges first, then the fewest activations kept in float.

The unit is the activation tensor: onnxruntime quantizes a tensor when its producer or any consumer
is quantized, so a tensor stays float only when all of them do. A configuration (other ranges for some
tensors, some tensors in float) is evaluated without re-running the quantizer: the exported graph's
scales are rewritten, or its Q/DQ pairs bypassed, and the held-out subsample runs against the
original model's outputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import onnx

from ..exporters.onnx.qdq_rewrites import with_float_tensors, with_tensor_ranges
from ..metrics import all_gates, all_metrics
from ..metrics.gates import Gates, meets, ranking_key
from ..metrics.gates import score as gate_scores
from ..metrics.suite import MetricSuite
from .trial_session import trial_session

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
    evaluations: int = 0

    def score(self, float_tensors: Iterable[str], ranges: Mapping[str, tuple[float, float]] | None = None) -> dict:
        model = with_float_tensors(with_tensor_ranges(self.quantized, ranges or {}), self.original, float_tensors)
        session = trial_session(model, self.runtime)
        names = [output.name for output in session.get_outputs()]
        suite = MetricSuite(list(self.batches[0][2]), self.metrics or all_metrics())
        for feeds, labels, expected in self.batches:
            produced = dict(zip(names, session.run(names, feeds), strict=True))
            suite.update(expected, produced, labels)
        self.evaluations += 1
        return gate_scores(suite.parity(), suite.metrics())

    def meets(self, score: dict) -> bool:
        return meets(self.gates, score)

    def quality(self, score: dict) -> tuple:
        """Orders scores: meeting the budget first, then the gates' values in registry order."""
        return ranking_key(self.gates, score)


@dataclass
class RangeChoice:
    """Which calibrator's ranges the search settled on: one for all tensors, then per-tensor changes."""

    method: str
    scores: dict[str, dict] = field(default_factory=dict)
    per_tensor: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.method}+per-tensor" if self.per_tensor else self.method

    def to_dict(self) -> dict:
        return {"method": self.method, "scores_by_method": self.scores, "per_tensor": self.per_tensor}


@dataclass
class SearchResult:
    float_tensors: list[str]
    met: bool
    baseline: dict
    final: dict
    range_choice: RangeChoice | None = None
    ranking: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    float_nodes: list[str] = field(default_factory=list)
    evaluations: int = 0
    samples: int = 0
    note: str | None = None
    speed_cost: dict = field(default_factory=dict)  # speed_cost() of the float tensors
    weight_limit: dict | None = None  # weight_limit(), when floating one tensor at a time missed the budget

    def to_dict(self) -> dict:
        return {
            "note": self.note,
            "budget_met": self.met, "kept_in_float": self.float_tensors, "float_nodes": self.float_nodes,
            "all_quantized": self.baseline,
            "range_choice": self.range_choice.to_dict() if self.range_choice else None,
            "with_fallback": self.final, "ranking": self.ranking, "seconds": self.seconds,
            "evaluations": self.evaluations, "subsample": self.samples, "speed_cost": self.speed_cost,
            "weight_limit": self.weight_limit,
        }


def rank_tensors(evaluator: Evaluator, candidates: Sequence[str], baseline: dict,
                 ranges: Mapping[str, tuple[float, float]] | None = None,
                 on_step: Callable[[], None] | None = None) -> list[dict]:
    """Each tensor's effect: the score with it alone in float (the others quantized), best value first:
    the cosine it wins for the share of INT8 work it sends back to float."""
    ranking = []
    for name in candidates:
        score = evaluator.score([name], ranges)
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
            candidate = evaluator.score([], trial)
            if evaluator.quality(candidate) > evaluator.quality(score):
                score, choice.ranges = candidate, trial
                choice.per_tensor[name] = method
        if evaluator.meets(score):
            break
    return score


def rerank(evaluator: Evaluator, ranking: list[dict], before: dict, after: dict, choice: RangeChoice) -> list[dict]:
    """The ranking after per-tensor ranges changed: the changed tensors are scored again; for the rest,
    floating them is assumed to gain what it did before."""
    rows = []
    for row in ranking:
        if row["tensor"] in choice.per_tensor:
            score = evaluator.score([row["tensor"]], choice.ranges)
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
                            evaluations=evaluator.evaluations)

    if evaluator.meets(baseline):
        return result([], baseline, None, [])
    choice, score = None, baseline
    if by_method:
        choice = choose_method(evaluator, by_method, current_method, baseline, candidates)
        score = choice.scores[choice.method]
        if evaluator.meets(score):
            return result([], score, choice, [])
    ranges = choice.ranges if choice else {}
    ranking = rank_tensors(evaluator, candidates, score, ranges, on_step)
    if choice and refine:
        sensitive = [row["tensor"] for row in ranking[:refine] if row["cosine_gain"] > 0]
        refined = refine_per_tensor(evaluator, by_method, choice, sensitive, score)
        ranges = choice.ranges
        if evaluator.meets(refined):
            return result([], refined, choice, ranking)
        ranking = rerank(evaluator, ranking, score, refined, choice)
        score = refined
    kept: list[str] = []
    # At least one activation stays quantized: an artifact with nothing in INT8 is not this target's.
    # Effects do not add up: a tensor joins the float set only when the set with it scores better, and one
    # that gained nothing alone may still complete a set (tried last, as the ranking orders it).
    for row in ranking[: max(len(ranking) - 1, 0)]:
        trial = evaluator.score([*kept, row["tensor"]], ranges)
        if not kept or evaluator.quality(trial) > evaluator.quality(score):
            kept, score = [*kept, row["tensor"]], trial
        if evaluator.meets(score):
            break
    if evaluator.meets(score) or not candidates:
        return result(kept, score, choice, ranking)
    limit = weight_limit(evaluator, candidates, ranges)
    if limit["reachable"]:
        # Floated one at a time, no set met the budget though all in float does: come from the other end.
        kept, score = requantize(evaluator, ranking, limit["every_activation_float"], ranges, on_step) or (kept, score)
    searched = result(kept, score, choice, ranking)
    searched.weight_limit = limit
    return searched


def requantize(evaluator: Evaluator, ranking: Sequence[dict], every: dict,
               ranges: Mapping[str, tuple[float, float]], on_step: Callable[[], None] | None = None
               ) -> tuple[list[str], dict] | None:
    """From every activation in float (which meets the budget), quantize tensors back one at a time while the
    budget holds, the most MACs first (the most speed back; ties: the least cosine gained in float first), in
    sweeps until one brings none back: effects do not add up, so a tensor refused early can fit once others
    are back. None when no tensor can be quantized again: an artifact with nothing in INT8 is not this
    target's."""
    kept, score = [row["tensor"] for row in ranking], every
    order = [row["tensor"] for row in sorted(ranking, key=lambda row: (-row["macs_share"], row["cosine_gain"],
                                                                          row["tensor"]))]
    for _ in range(MAX_SWEEPS):
        before = len(kept)
        for tensor in [name for name in order if name in kept]:
            rest = [name for name in kept if name != tensor]
            trial = evaluator.score(rest, ranges)
            if evaluator.meets(trial):
                kept, score = rest, trial
            if on_step:
                on_step()
        if len(kept) == before:
            break
    return None if len(kept) == len(ranking) else (kept, score)


def weight_limit(evaluator: Evaluator, candidates: Sequence[str], ranges: Mapping[str, tuple[float, float]]) -> dict:
    """The score with every activation in float (only the weights rounded) and the gates it misses. Effects do
    not add up, so missing them here does not prove a partly quantized graph cannot meet them (rounding can
    also cancel); meeting them here is what lets the search come from the float end."""
    every = evaluator.score(candidates, ranges)
    missed = [{"gate": gate.name, "value": every.get(gate.score_key), "limit": evaluator.gates.limits[gate.name]}
              for gate in all_gates()
              if not gate.passes(every.get(gate.score_key), evaluator.gates.limits[gate.name])]
    return {"every_activation_float": every, "reachable": not missed, "missed": missed}


def plot_sensitivity(ranking: list[dict], path, count: int = 15) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = ranking[:count][::-1]
    figure, axes = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2), dpi=100)
    axes.barh([row["tensor"] for row in rows], [row["cosine_gain"] for row in rows], color="#4c72b0")
    axes.set_xlabel("cosine gain when this tensor alone stays in float")
    axes.set_title("most sensitive quantized activations")
    axes.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return True


def markdown(search: dict) -> list[str]:
    """The report.md section of a search (its `to_dict()` form)."""
    base, final = search["all_quantized"], search["with_fallback"]
    if search.get("note"):
        return [f"All quantized with the run's ranges: cosine {base['cosine']:.4f}. {search['note']}."]
    verdict = "the budget holds" if search["budget_met"] else "no fallback set meets the budget"
    lines = [f"All quantized with the run's ranges: cosine {base['cosine']:.4f}. After the search "
             f"({len(search['kept_in_float'])} activation(s) kept in float): cosine {final['cosine']:.4f}: "
             f"{verdict}. {search['evaluations']} evaluations on {search['subsample']} held-out samples took "
             f"{search['seconds']:.1f} s.", ""]
    choice = search.get("range_choice")
    if choice:
        by_method = choice["scores_by_method"].items()
        scores = ", ".join(f"{method} {score['cosine']:.4f}" for method, score in by_method)
        lines += [f"Ranges: `{choice['method']}` for all tensors (cosine with each calibrator, all quantized: "
                  f"{scores}).", ""]
        if choice["per_tensor"]:
            lines += ["Per-tensor ranges: " + ", ".join(f"`{name}` {method}"
                                                        for name, method in choice["per_tensor"].items()), ""]
    if search["kept_in_float"]:
        lines += ["Activations kept in float (best cosine per MAC first): "
                  + ", ".join(f"`{n}`" for n in search["kept_in_float"]), ""]
        if search["float_nodes"]:
            lines += ["Nodes kept in float for them: " + ", ".join(f"`{n}`" for n in search["float_nodes"]), ""]
        lines += speed_lines(search.get("speed_cost") or {})
    lines += weight_limit_lines(search.get("weight_limit"), search["budget_met"])
    if search["ranking"]:
        lines += ["| activation | cosine if alone in float | gain | MACs leaving INT8 |", "|---|---|---|---|"]
        lines += [f"| `{row['tensor']}` | {row['cosine_if_float']:.4f} | {row['cosine_gain']:+.4f} | "
                  f"{row.get('macs_share', 0.0):.1%} |" for row in search["ranking"][:15]]
        lines += ["", "![sensitivity](sensitivity.png)"]
    return lines


def weight_limit_lines(limit: dict | None, met: bool = False) -> list[str]:
    """The report's words for `weight_limit()`, when the forward pass missed the budget."""
    if not limit:
        return []
    if limit["reachable"]:
        every = limit["every_activation_float"]["cosine"]
        how = ("so activations were quantized back from there, the most MACs first, while the budget held" if met
               else "but no activation could be quantized back from there within it")
        return [f"Floated one at a time, no set met the budget; every activation in float meets it (cosine "
                f"{every:.4f}), {how}.", ""]
    missed = ", ".join(f"{row['gate']} {row['value']:.4f}, limit {row['limit']:g}" for row in limit["missed"])
    return [f"Every activation in float (only the weights INT8) misses the budget too ({missed}): the weights' "
            "rounding alone costs more than it allows on this data, so floating activations is not the lever "
            "(`--qat` where the source can train, or `--exclude-nodes`, are).", ""]


def speed_lines(cost: dict) -> list[str]:
    """The speed cost of the fallback, in words: which compute layers it sends back to float."""
    if not cost.get("nodes"):
        return ["Speed cost of the fallback: none (no compute node leaves its INT8 kernel).", ""]
    named = ", ".join(f"`{row['node']}` {row['macs_share']:.1%}" for row in cost["nodes"][:10])
    more = f" and {len(cost['nodes']) - 10} more" if len(cost["nodes"]) > 10 else ""
    return [f"Speed cost of the fallback: {cost['macs_share']:.1%} of the model's MACs leave INT8 kernels "
            f"({len(cost['nodes'])} compute nodes: {named}{more}). These layers are what keeps this "
            "artifact from the full INT8 speed-up at this budget.", ""]
