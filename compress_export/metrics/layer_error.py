"""Per-layer error of a QDQ ONNX artifact: for each quantized activation, what its consumers read (the
DequantizeLinear output, in the quantized model) against the same tensor in the FP32 model, on held-out
data. The error is cumulative: it shows where along the graph the INT8 model drifts from FP32."""

from __future__ import annotations

from pathlib import Path

from .base import ArtifactMetric, ArtifactProbe
from .cosine import cosine_rows
from .sqnr import sqnr_db

MAX_SAMPLES = 64
WORST_SHOWN = 10


def quantized_pairs(model) -> dict[str, str]:
    """FP32 tensor name -> the DequantizeLinear output that stands for it in the QDQ graph."""
    constants = {init.name for init in model.graph.initializer}
    constants |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    dequantized = {node.input[0]: node.output[0] for node in model.graph.node if node.op_type == "DequantizeLinear"}
    pairs = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in constants and node.output[0] in dequantized:
            pairs.setdefault(node.input[0], dequantized[node.output[0]])
    return pairs


def layer_errors(quantized_path: Path, fp32_path: Path, batches) -> list[dict]:
    """One row per quantized activation, graph order: cosine (mean per sample) and SQNR. Batch by batch,
    so memory holds one batch's intermediate tensors, not the subsample's."""
    import numpy as np
    import onnx

    from ..graphs.onnx_io import session_with_outputs

    quantized, original = onnx.load(str(quantized_path)), onnx.load(str(fp32_path))
    # A quantized graph output is renamed by the quantizer; only tensors the FP32 graph has are compared.
    present = {name for node in original.graph.node for name in node.output} | {i.name for i in original.graph.input}
    pairs = {tensor: dq for tensor, dq in quantized_pairs(quantized).items() if tensor in present}
    if not pairs:
        return []
    run_exact = session_with_outputs(original, list(pairs))
    run_rounded = session_with_outputs(quantized, list(pairs.values()))
    stats = {tensor: ([], [0.0, 0.0]) for tensor in pairs}
    for feeds in _subsample(batches):
        exact, rounded = run_exact(feeds), run_rounded(feeds)
        for tensor, dequantized in pairs.items():
            a, b = np.asarray(exact[tensor], np.float64), np.asarray(rounded[dequantized], np.float64)
            if a.shape != b.shape:
                continue
            rows = (len(a), -1) if a.ndim else (1, 1)
            cosines, energy = stats[tensor]
            cosines.extend(cosine_rows(a.reshape(rows), b.reshape(rows)).tolist())
            energy[0] += float((a**2).sum())
            energy[1] += float(((a - b) ** 2).sum())
    return [{"tensor": tensor, "cosine": float(np.mean(cosines)), "sqnr_db": sqnr_db(*energy)}
            for tensor, (cosines, energy) in stats.items() if cosines]


def _subsample(batches) -> list[dict]:
    """The feeds of the first MAX_SAMPLES held-out samples (the budget search's own subsample)."""
    from ..data.validation_set import subsample

    return [feeds for feeds, _, _ in subsample(batches, MAX_SAMPLES)]


class LayerError(ArtifactMetric):
    name = "layer_error"
    title = "Per-layer error"

    def measure(self, probe: ArtifactProbe) -> dict | None:
        if Path(probe.path).suffix != ".onnx" or probe.fp32_onnx is None or not probe.batches:
            return None
        rows = layer_errors(Path(probe.path), Path(probe.fp32_onnx), probe.batches)
        if not rows:
            return None
        worst = sorted(rows, key=lambda row: (row["cosine"], row["tensor"]))[:WORST_SHOWN]
        return {"tensors": rows, "worst": [row["tensor"] for row in worst],
                "samples": sum(len(next(iter(feeds.values()))) for feeds in _subsample(probe.batches)),
                "measure": "what the consumers read (DequantizeLinear output) vs the FP32 model's tensor"}

    def markdown(self, result: dict) -> list[str]:
        by_name = {row["tensor"]: row for row in result["tensors"]}
        lines = [f"The {len(result['worst'])} quantized activations furthest from FP32 of {len(by_name)} "
                 f"({result['samples']} held-out samples; all in report.json):", "",
                 "| tensor | cosine | SQNR (dB) |", "|---|---|---|"]
        for name in result["worst"]:
            row = by_name[name]
            sqnr = "inf" if row["sqnr_db"] is None or row["sqnr_db"] == float("inf") else f"{row['sqnr_db']:.1f}"
            lines.append(f"| `{name}` | {row['cosine']:.4f} | {sqnr} |")
        return lines


METRIC = LayerError()
