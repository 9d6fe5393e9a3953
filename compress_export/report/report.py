"""The report of one target: gates, metrics, benchmark; JSON for CI, markdown and a plot for people.
Every quality number, gate and headline comes from the metric registry."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import EXIT_GATE_FAILED, EXIT_OK
from ..metrics import all_metrics
from ..metrics.gates import Gates, gate_results, would_pass_with

SCHEMA = "compress-export/report@1"


@dataclass
class Report:
    target: str
    gates: Gates
    artifact: dict
    parity: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    bench: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sensitivity: dict | None = None
    analysis: dict = field(default_factory=dict)  # artifact-scope metrics by name (flops, layer_error)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # markdown owned by other stages

    @classmethod
    def from_suite(cls, target: str, gates: Gates, artifact: dict, suite, context: dict, notes: list[str]) -> Report:
        """A report whose quality numbers come from a MetricSuite run on the artifact."""
        return cls(target=target, gates=gates, artifact=artifact, parity=suite.parity(), metrics=suite.metrics(),
                   context=context, notes=notes)

    def gate_results(self) -> list[dict]:
        return gate_results(self.gates, self.parity, self.metrics)

    @property
    def top1_agreement(self) -> float | None:
        return next((stats["top1_agreement"] for stats in self.parity.values() if "top1_agreement" in stats), None)

    @property
    def passed(self) -> bool:
        return all(result["passed"] for result in self.gate_results())

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.passed else EXIT_GATE_FAILED

    def would_pass_with(self) -> dict:
        """The loosest gate settings this candidate meets: the tolerance that would have passed."""
        return would_pass_with(self.parity, self.metrics)

    def to_dict(self) -> dict:
        data = {
            "schema": SCHEMA,
            "target": self.target,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "gates": self.gates.to_dict(),
            "gate_results": self.gate_results(),
            "would_pass_with": self.would_pass_with(),
            "artifact": self.artifact,
            "parity": self.parity,
            "metrics": self.metrics,
            "bench": self.bench,
            "notes": self.notes,
            "warnings": self.warnings,
            **self.context,
            **self.analysis,
        }
        if self.top1_agreement is not None:
            data["top1_agreement"] = self.top1_agreement
        if self.sensitivity is not None:
            data["sensitivity"] = self.sensitivity
        return _finite(data)

    def quality(self) -> tuple[str, float | None, float | None]:
        """(label, reference, candidate) of the headline quality metric: the first metric that offers one."""
        for metric in all_metrics():
            headline = metric.headline(self.parity, self.metrics)
            if headline:
                return headline
        return "quality", None, None

    def to_markdown(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"# {self.target}: {verdict}", ""]
        source = self.context.get("source", {})
        if source:
            lines += [f"Model `{source.get('model')}` ({source.get('framework')})"
                      + (f", task {self.context['task']}." if self.context.get("task") else "."), ""]
        data = self.context.get("data", {})
        if data.get("validation"):
            val = data["validation"]
            lines += [f"Validation: {val.get('samples')} samples, {val.get('origin', '')}.", ""]
        if data.get("calibration", {}).get("synthetic"):
            lines += ["**Calibrated on random data**: ranges do not reflect real inputs.", ""]
        lines += ["| metric | FP32 reference | candidate | change |", "|---|---|---|---|"]
        lines += self._quality_rows() + self._bench_rows()
        lines += ["", "## Gates", "", "| gate | limit | value | result |", "|---|---|---|---|"]
        for gate in self.gate_results():
            lines.append(f"| {gate['gate']} | {gate['limit']:g} | {gate['value']:.6g} | "
                         f"{'pass' if gate['passed'] else 'FAIL'} |")
        for metric in all_metrics():
            if metric.scope == "artifact" and self.analysis.get(metric.name):
                lines += ["", f"## {metric.title}", ""] + metric.markdown(self.analysis[metric.name])
        for title, section in self.sections:
            lines += ["", f"## {title}", ""] + section
        for title, items in (("Notes", self.notes), ("Warnings", self.warnings)):
            if items:
                lines += ["", f"## {title}", ""] + [f"- {item}" for item in items]
        return "\n".join(lines) + "\n"

    def _quality_rows(self) -> list[str]:
        rows = []
        metrics = all_metrics()
        for metric in metrics:
            if metric.scope == "task":
                rows += [_row(label, ref, cand, ".4f") for label, ref, cand in metric.rows(self.parity, self.metrics)]
        for output, stats in self.parity.items():
            for metric in metrics:
                if metric.scope == "output":
                    rows += [_row(label, ref, cand, ".6g") for label, ref, cand in metric.output_rows(output, stats)]
        return rows

    def _bench_rows(self) -> list[str]:
        reference, candidate = self.bench.get("reference"), self.bench.get("candidate")
        if not candidate or "by_batch" not in candidate:  # a language model's speed has its own section
            return []
        rows = []
        for batch, stats in candidate["by_batch"].items():
            base = (reference or {}).get("by_batch", {}).get(batch, {})
            for key, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
                rows.append(_row(f"latency {label} @ batch {batch} (ms)", base.get(key), stats[key]))
            rows.append(_row(f"throughput @ batch {batch} (/s)", base.get("throughput_per_s"),
                             stats["throughput_per_s"]))
            if batch in self.bench.get("a_a", {}):  # the FP32 model timed against a second copy of itself
                rows.append(_row(f"A/A: FP32 against itself @ batch {batch} (x)", 1.0, self.bench["a_a"][batch]))
            for runtime, by_batch in self.bench.get("fp32_runtimes", {}).items():
                if batch in by_batch and by_batch[batch] != base.get("p50_ms"):  # FP32 in another runtime
                    rows.append(_row(f"latency p50 @ batch {batch} (ms), FP32 in {runtime}", by_batch[batch],
                                     stats["p50_ms"]))
        rows.append(_row("peak RSS (MB)", (reference or {}).get("peak_rss_mb"), candidate["peak_rss_mb"]))
        reference_size = _kb((reference or {}).get("size_bytes"))
        rows.append(_row("size on disk (KB)", reference_size, _kb(candidate.get("size_bytes"))))
        return rows


def _kb(size: int | None) -> float | None:
    return None if size is None else size / 1024.0


def _row(label: str, reference: float | None, candidate: float | None, spec: str = ".4g") -> str:
    ref_text = "" if reference is None else format(reference, spec)
    cand_text = "" if candidate is None else format(candidate, spec)
    return f"| {label} | {ref_text} | {cand_text} | {_change(reference, candidate)} |"


def _change(reference: float | None, candidate: float | None) -> str:
    if reference in (None, 0) or candidate is None:
        return ""
    return f"{100.0 * (candidate - reference) / reference:+.1f}%"


def _finite(value):
    """JSON has no Infinity: a perfect SQNR is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
