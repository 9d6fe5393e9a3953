"""The report of one target: gates, parity, metrics, benchmark; JSON for CI, markdown and a plot for people."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EXIT_GATE_FAILED, EXIT_OK
from .specs import Gates

SCHEMA = "compress-export/report@1"


@dataclass
class Report:
    target: str
    gates: Gates
    artifact: dict
    parity: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    top1_agreement: float | None = None
    bench: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sensitivity: dict | None = None

    def gate_results(self) -> list[dict]:
        results = []
        for output, stats in self.parity.items():
            results.append({
                "gate": f"min_cosine[{output}]", "limit": self.gates.min_cosine,
                "value": stats["cosine"], "passed": self.gates.cosine_passes(stats["cosine"]),
            })
        drop = self.accuracy_drop_points()
        if drop is not None:
            results.append({
                "gate": "max_accuracy_drop", "limit": self.gates.max_accuracy_drop,
                "value": drop, "passed": self.gates.accuracy_passes(drop),
            })
        return results

    def accuracy_drop_points(self) -> float | None:
        if "reference" in self.metrics and "candidate" in self.metrics:
            return 100.0 * (self.metrics["reference"]["accuracy"] - self.metrics["candidate"]["accuracy"])
        return None

    @property
    def passed(self) -> bool:
        return all(result["passed"] for result in self.gate_results())

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.passed else EXIT_GATE_FAILED

    def would_pass_with(self) -> dict:
        """The loosest gate settings this candidate meets: the tolerance that would have passed."""
        out = {}
        if self.parity:
            out["min_cosine"] = min(stats["cosine"] for stats in self.parity.values())
        drop = self.accuracy_drop_points()
        if drop is not None:
            out["max_accuracy_drop"] = max(drop, 0.0)
        return out

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
        }
        if self.top1_agreement is not None:
            data["top1_agreement"] = self.top1_agreement
        if self.sensitivity is not None:
            data["sensitivity"] = self.sensitivity
        return _finite(data)

    def quality(self) -> tuple[str, float | None, float | None]:
        """(label, reference, candidate) of the headline quality metric."""
        if "candidate" in self.metrics:
            return "accuracy", self.metrics["reference"]["accuracy"], self.metrics["candidate"]["accuracy"]
        if self.parity:
            return "cosine", 1.0, min(stats["cosine"] for stats in self.parity.values())
        return "quality", None, None

    def to_markdown(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"# {self.target}: {verdict}", ""]
        source = self.context.get("source", {})
        if source:
            lines += [f"Model `{source.get('model')}` ({source.get('framework')}).", ""]
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
        lines += self._sensitivity_lines()
        lines += self._qat_lines()
        for title, items in (("Notes", self.notes), ("Warnings", self.warnings)):
            if items:
                lines += ["", f"## {title}", ""] + [f"- {item}" for item in items]
        return "\n".join(lines) + "\n"

    def _qat_lines(self) -> list[str]:
        qat = self.context.get("qat")
        if not qat:
            return []
        settings = qat["settings"]
        lines = ["", "## QAT", "",
                 f"{qat['steps']} steps in {qat['seconds']:.0f} s (lr {settings['lr']:g}, seed {settings['seed']}, "
                 f"data: {qat['train_data']}{', with labels' if qat['labels'] else ', no labels'}); "
                 f"{qat['fake_quantized_activations']} activations fake-quantized, {qat['learned_ranges']} learned "
                 f"ranges exported. Distillation loss {qat['loss_first']:.4g} -> {qat['loss_last']:.4g} "
                 "(`qat_loss.png`).", "", "| | " + " | ".join(self.parity) + " | accuracy | size |",
                 "|---|" + "---|" * (len(self.parity) + 2)]
        ptq = qat["ptq"]

        def row(name: str, parity: dict, metrics: dict, size) -> str:
            cosines = " | ".join(f"{stats['cosine']:.4f}" for stats in parity.values())
            accuracy = f"{metrics['candidate']['accuracy']:.4f}" if metrics else "-"
            return f"| {name} | {cosines} | {accuracy} | {size / 1024:.0f} KB |"

        lines.append(row("PTQ", ptq["parity"], ptq["metrics"], ptq["size_bytes"]))
        lines.append(row("QAT", self.parity, self.metrics, self.artifact["size_bytes"]))
        return lines

    def _sensitivity_lines(self) -> list[str]:
        search = self.sensitivity
        if not search:
            return []
        base, final = search["all_quantized"], search["with_fallback"]
        verdict = "the budget holds" if search["budget_met"] else "no fallback set meets the budget"
        lines = ["", "## Sensitivity", "",
                 f"All quantized with the run's ranges: cosine {base['cosine']:.4f}. After the search "
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
            lines += ["Activations kept in float (most sensitive first): "
                      + ", ".join(f"`{n}`" for n in search["kept_in_float"]),
                      "", "Nodes kept in float for them: " + ", ".join(f"`{n}`" for n in search["float_nodes"]), ""]
        if search["ranking"]:
            lines += ["| activation | cosine if alone in float | gain |", "|---|---|---|"]
            lines += [f"| `{row['tensor']}` | {row['cosine_if_float']:.4f} | {row['cosine_gain']:+.4f} |"
                      for row in search["ranking"][:15]]
            lines += ["", "![sensitivity](sensitivity.png)"]
        return lines

    def _quality_rows(self) -> list[str]:
        rows = []
        if "candidate" in self.metrics:
            ref, cand = self.metrics["reference"]["accuracy"], self.metrics["candidate"]["accuracy"]
            rows.append(f"| accuracy | {ref:.4f} | {cand:.4f} | {_change(ref, cand)} |")
        if self.top1_agreement is not None:
            rows.append(f"| top-1 agreement | 1 | {self.top1_agreement:.4f} | |")
        for output, stats in self.parity.items():
            rows.append(f"| cosine `{output}` | 1 | {stats['cosine']:.6f} | |")
            rows.append(f"| SQNR `{output}` (dB) | | {stats['sqnr_db']:.2f} | |")
            rows.append(f"| max abs error `{output}` | 0 | {stats['max_abs']:.4g} | |")
        return rows

    def _bench_rows(self) -> list[str]:
        reference, candidate = self.bench.get("reference"), self.bench.get("candidate")
        if not candidate:
            return []
        rows = []
        for batch, stats in candidate["by_batch"].items():
            base = (reference or {}).get("by_batch", {}).get(batch, {})
            for key, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
                rows.append(_row(f"latency {label} @ batch {batch} (ms)", base.get(key), stats[key]))
            rows.append(_row(f"throughput @ batch {batch} (/s)", base.get("throughput_per_s"),
                             stats["throughput_per_s"]))
        rows.append(_row("peak RSS (MB)", (reference or {}).get("peak_rss_mb"), candidate["peak_rss_mb"]))
        reference_size = _kb((reference or {}).get("size_bytes"))
        rows.append(_row("size on disk (KB)", reference_size, _kb(candidate.get("size_bytes"))))
        return rows


def _kb(size: int | None) -> float | None:
    return None if size is None else size / 1024.0


def _row(label: str, reference: float | None, candidate: float | None) -> str:
    ref_text = "" if reference is None else f"{reference:.4g}"
    cand_text = "" if candidate is None else f"{candidate:.4g}"
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


def plot_tradeoff(points: list[tuple[str, float, float]], quality_label: str, path: Path, batch: str) -> bool:
    """Quality vs latency scatter; returns False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    for index, (label, latency, quality) in enumerate(points):
        axes.scatter([latency], [quality], s=40)
        axes.annotate(label, (latency, quality), textcoords="offset points", xytext=(5, 5 if index else -14),
                      fontsize=9)
    axes.set_xlabel(f"p50 latency at batch {batch}, relative to FP32 timed beside it (lower is better)")
    axes.set_ylabel(f"{quality_label}, higher is better")
    axes.set_title(f"{quality_label} vs latency")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return True
