"""What a metric is: accumulated batch by batch (or measured once per artifact), a result, an optional
gate with its direction, and the rows it adds to the report. No framework imports at module level."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Gate:
    """A pass rule on one number. `name` is its key in `Gates`, in report.json and its CLI option
    (`--min-cosine`); `score_key` is what the budget search calls the same number. A limit must lie in
    [low, high] (high None: no upper bound): a cosine above 1 or a negative accuracy drop asks for nothing
    a model can give and is refused as a usage error."""

    name: str
    default: float
    help: str
    higher_is_better: bool
    score_key: str
    slack: float = 0.0  # absorbs float error where the value is a difference of two measured numbers
    low: float = 0.0
    high: float | None = None

    def range_text(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" if self.high is not None else f">= {self.low:g}"

    def admits(self, limit: float) -> bool:
        return self.low <= limit and (self.high is None or limit <= self.high)

    def passes(self, value: float | None, limit: float) -> bool:
        if value is None:
            return True  # not measured (no labels, say): nothing to hold against
        return value >= limit - self.slack if self.higher_is_better else value <= limit + self.slack

    def loosest(self, value: float) -> float:
        """The limit this value would just meet; a lower-is-better budget never goes below zero."""
        return value if self.higher_is_better else max(value, 0.0)


@dataclass(frozen=True)
class MetricSettings:
    """What a run tells its metrics: the feature model FID reads images through (an ONNX file; None: the default).
    It travels in the job and, for `validate`, in the bundle."""

    fid_features: str | None = None


class Metric(ABC):
    """scope "output": one result per model output (merged into report.json's `parity[output]`);
    scope "task": one result over all outputs and the labels (`metrics.reference` / `metrics.candidate`)."""

    name: str = "metric"
    scope: str = "output"
    gate: Gate | None = None

    def configured(self, settings: MetricSettings) -> Metric:
        """This metric for a run with these settings (most metrics take none)."""
        return self

    @abstractmethod
    def start(self) -> Any:
        """A fresh accumulator state."""

    @abstractmethod
    def update(self, state: Any, reference, candidate, labels=None) -> None:
        """Fold one batch in: arrays for an output metric, dicts of outputs for a task metric."""

    @abstractmethod
    def result(self, state: Any) -> dict:
        """JSON-ready numbers; empty when nothing applied."""

    def gate_values(self, parity: dict, metrics: dict) -> list[tuple[str, float]]:
        """(gate label, value) pairs this metric's gate is checked on; empty when it does not apply."""
        return []

    def headline(self, parity: dict, metrics: dict) -> tuple[str, float, float] | None:
        """(label, FP32 value, candidate value) when this metric can be the run's headline quality."""
        return None

    def rows(self, parity: dict, metrics: dict) -> list[tuple[str, float | None, float | None]]:
        """(label, FP32 value, candidate value) rows for the before/after table."""
        return []


class OutputMetric(Metric):
    """A metric computed per output from (reference, candidate) arrays."""

    scope = "output"
    keys: tuple[str, ...] = ()  # the result keys it owns in `parity[output]`

    def rows(self, parity: dict, metrics: dict) -> list[tuple[str, float | None, float | None]]:
        return [row for output, stats in parity.items() for row in self.output_rows(output, stats)]

    def gate_values(self, parity: dict, metrics: dict) -> list[tuple[str, float]]:
        """The gate on each output that has its score (`min_mask_iou[output]`)."""
        if self.gate is None:
            return []
        key = self.gate.score_key
        return [(f"{self.gate.name}[{output}]", stats[key]) for output, stats in parity.items() if key in stats]

    def output_rows(self, output: str, stats: dict) -> list[tuple[str, float | None, float | None]]:
        return []


class RatioMetric(OutputMetric):
    """Agreeing parts over all parts (pixels of a mask, samples, decisions), counted on the outputs of the metric's
    layout only: an output of another layout anywhere in the run leaves no result. `key` names the ratio in
    `parity[output]`; `label` its report row ("{output}" is the output's name)."""

    key: str = "ratio"
    label: str = "{output}"

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key,)

    @abstractmethod
    def count(self, reference, candidate) -> tuple[int, int] | None:
        """(agreeing, all) in one batch, or None when the output is not of this metric's layout."""

    def start(self) -> dict:
        return {"agree": 0, "total": 0, "applies": True}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        counts = self.count(reference, candidate)
        if counts is None:
            state["applies"] = False
            return
        state["agree"] += counts[0]
        state["total"] += counts[1]

    def result(self, state: dict) -> dict:
        if not state["applies"] or not state["total"]:
            return {}
        return {self.key: state["agree"] / state["total"]}

    def output_rows(self, output: str, stats: dict) -> list[tuple[str, float | None, float | None]]:
        return [(self.label.format(output=output), 1.0, stats[self.key])] if self.key in stats else []


@dataclass(frozen=True)
class ArtifactProbe:
    """What an artifact-scope metric may look at: the artifact, the FP32 ONNX graph it came from (None
    when the target converts the source model directly), and a few held-out batches with the original
    model's outputs."""

    path: Any  # Path of the artifact
    runtime: str
    fp32_onnx: Any = None  # Path | None
    batches: tuple = ()  # ((feeds, labels, reference outputs), ...)
    original_onnx: Any = None  # the original model's FP32 ONNX where a step (pruning) changed the model


class ArtifactMetric(Metric):
    """Measured once per artifact (size, compute, per-layer error) rather than accumulated per batch."""

    scope = "artifact"
    title: str = "Analysis"  # the report.md section heading

    def start(self) -> None:
        return None

    def update(self, state, reference, candidate, labels=None) -> None:
        return None

    def result(self, state) -> dict:
        return {}

    @abstractmethod
    def measure(self, probe: ArtifactProbe) -> dict | None:
        """The result for report.json (None when it does not apply to this artifact)."""

    def warnings(self, result: dict) -> list[str]:
        """What the report's warnings say of the result (nothing, for most)."""
        return []

    def markdown(self, result: dict) -> list[str]:
        """Lines of the report section for this result."""
        return []

    def summary(self, result: dict) -> str | None:
        """A short cell for the run's summary table."""
        return None
