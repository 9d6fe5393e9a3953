"""The quality budget: a limit per gate (defaults from the metric registry), and the one place that
decides pass or fail. The report, the budget search and `validate` all call it."""

from __future__ import annotations

import math

from . import all_gates, all_metrics


class Gates:
    """Limits by gate name (`Gates(min_cosine=0.995)`); every registered gate has a default."""

    def __init__(self, **limits: float):
        from ..errors import UsageError

        gates = {gate.name: gate for gate in all_gates()}
        unknown = sorted(set(limits) - set(gates))
        if unknown:
            raise UsageError(f"unknown gate(s) {', '.join(unknown)}; known: {', '.join(gates)}")
        for name, value in limits.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
                raise UsageError(f"gate {name} needs a finite number, not {value!r}")
            if not gates[name].admits(float(value)):
                raise UsageError(f"gate {name} must be {gates[name].range_text()}, not {value:g}")
        object.__setattr__(self, "limits", {**{n: g.default for n, g in gates.items()},
                                            **{k: float(v) for k, v in limits.items()}})

    def __getattr__(self, name: str) -> float:
        try:
            return self.__dict__["limits"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        raise AttributeError("Gates is immutable")

    def __eq__(self, other) -> bool:
        return isinstance(other, Gates) and self.limits == other.limits

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.limits.items())))

    def __repr__(self) -> str:
        return f"Gates({', '.join(f'{k}={v:g}' for k, v in self.limits.items())})"

    def to_dict(self) -> dict:
        return dict(self.limits)

    @classmethod
    def from_dict(cls, data: dict, **overrides: float | None) -> Gates:
        """Recorded limits (a bundle's manifest), unknown ones dropped, with overrides that are set."""
        known = {gate.name for gate in all_gates()}
        limits = {k: v for k, v in data.items() if k in known}
        limits.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**limits)


def gate_results(limits: Gates, parity: dict, metrics: dict) -> list[dict]:
    results = []
    for metric in all_metrics():
        if metric.gate is None:
            continue
        limit = limits.limits[metric.gate.name]
        for label, value in metric.gate_values(parity, metrics):
            results.append({"gate": label, "limit": limit, "value": value,
                            "passed": metric.gate.passes(value, limit)})
    return results


def worst_values(parity: dict, metrics: dict) -> dict[str, tuple]:
    """Per gate: (gate, the worst value over what it is checked on)."""
    worst = {}
    for metric in all_metrics():
        values = [value for _, value in metric.gate_values(parity, metrics)] if metric.gate else []
        if values:
            worst[metric.gate.name] = (metric.gate, min(values) if metric.gate.higher_is_better else max(values))
    return worst


def would_pass_with(parity: dict, metrics: dict) -> dict:
    """The loosest gate settings this candidate meets: the tolerance that would have passed."""
    return {name: gate.loosest(value) for name, (gate, value) in worst_values(parity, metrics).items()}


def score(parity: dict, metrics: dict) -> dict:
    """The budget search's view: the worst value of each gate under its score key (None when not measured)."""
    values = {gate.score_key: None for gate in all_gates()}
    values.update({gate.score_key: value for gate, value in worst_values(parity, metrics).values()})
    return values


def meets(limits: Gates, values: dict) -> bool:
    return all(gate.passes(values.get(gate.score_key), limits.limits[gate.name]) for gate in all_gates())


# What the user sees (labels, decisions, boxes, masks, strings) outranks signal statistics like cosine.
USER_LEVEL = ("accuracy", "top1", "detections", "masks", "sequences", "decisions")


def ranking_key(limits: Gates, values: dict) -> tuple:
    """Orders scores: meeting the budget first, then fewer failed gates, then each gate's value, the
    user-level gates first and the rest in registry order, better first; differences below float noise
    do not count."""
    gated = [(metric.name, metric.gate) for metric in all_metrics() if metric.gate is not None]
    failed = sum(not gate.passes(values.get(gate.score_key), limits.limits[gate.name]) for _, gate in gated)
    key: list = [failed == 0, -failed]
    for _, gate in sorted(gated, key=lambda pair: pair[0] not in USER_LEVEL):
        value = values.get(gate.score_key) or 0.0
        key.append(round(value if gate.higher_is_better else -value, 6))
    return tuple(key)
