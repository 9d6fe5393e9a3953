"""What the activation search settles on: the calibrator's ranges it chose, and the float set with its scores."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    estimate: dict | None = None  # the search's own score of what it chose; `final` is then the shipped artifact's
    confirmations: int = 0  # trials that met the budget on the subsample, scored again on the whole set
    validation_samples: int = 0
    stopped: bool = False  # the way back to INT8 stopped at --search-minutes (what it ships meets the budget)

    def to_dict(self) -> dict:
        return {
            "note": self.note,
            "budget_met": self.met, "kept_in_float": self.float_tensors, "float_nodes": self.float_nodes,
            "all_quantized": self.baseline,
            "range_choice": self.range_choice.to_dict() if self.range_choice else None,
            "with_fallback": self.final, "ranking": self.ranking, "seconds": self.seconds,
            "evaluations": self.evaluations, "subsample": self.samples, "speed_cost": self.speed_cost,
            "weight_limit": self.weight_limit, "estimate": self.estimate, "confirmations": self.confirmations,
            "validation_samples": self.validation_samples, "stopped_at_time_limit": self.stopped,
        }
