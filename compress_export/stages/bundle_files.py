"""What a bundle holds besides its artifact: reference inputs and outputs, reports, plots, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data import LABEL_KEY, batch_rows
from ..report import Report, plot_tradeoff

REFERENCE_MAX_SAMPLES = 256
REFERENCE_MAX_BYTES = 8 << 20


def write_reference(folder: Path, validation) -> None:
    """Held-out inputs with the original model's outputs, for `validate` without the model.
    Only batches shaped like the first are kept, so that they stack into one array per name."""
    inputs: dict[str, list] = {}
    outputs: dict[str, list] = {}
    first_shapes = {name: value.shape[1:] for name, value in validation.batches[0][0].items()}
    taken, size = 0, 0
    for feeds, labels, expected in validation.batches:
        if {name: value.shape[1:] for name, value in feeds.items()} != first_shapes:
            continue
        rows = min(batch_rows(feeds), REFERENCE_MAX_SAMPLES - taken)
        if rows <= 0 or size >= REFERENCE_MAX_BYTES:
            break
        for name, value in feeds.items():
            inputs.setdefault(name, []).append(value[:rows])
        if labels is not None:
            inputs.setdefault(LABEL_KEY, []).append(labels[:rows])
        for name, value in expected.items():
            outputs.setdefault(name, []).append(value[:rows])
            size += value[:rows].nbytes
        taken += rows
    (folder / "reference").mkdir()
    np.savez(folder / "reference" / "inputs.npz", **{k: np.concatenate(v) for k, v in inputs.items()})
    np.savez(folder / "reference" / "outputs.npz", **{k: np.concatenate(v) for k, v in outputs.items()})


def write_reports(folder: Path, report: Report) -> None:
    (folder / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (folder / "report.md").write_text(report.to_markdown())
    plot_summary([report], folder / "tradeoff.png")


def tradeoff_points(reports: list[Report]) -> tuple[list[tuple[str, float, float, int]], str]:
    """(label, p50 relative to FP32, quality, size in bytes) per target at the largest benchmarked batch, and
    that batch."""
    points, batch = [], ""
    for report in reports:
        label, ref_quality, cand_quality = report.quality()
        bench = report.bench
        if not bench or cand_quality is None:
            continue
        batch = str(max(int(b) for b in bench["candidate"]["by_batch"]))
        if not points:
            points.append(("FP32", 1.0, ref_quality, bench["reference"].get("size_bytes", 0)))
        # Each target is timed interleaved with its own FP32 run: the ratio is the comparable quantity.
        relative = bench["candidate"]["by_batch"][batch]["p50_ms"] / bench["reference"]["by_batch"][batch]["p50_ms"]
        points.append((report.target, relative, cand_quality, bench["candidate"].get("size_bytes", 0)))
    return points, batch


def plot_summary(reports: list[Report], path: Path) -> None:
    points, batch = tradeoff_points(reports)
    if points:
        plot_tradeoff(points, reports[0].quality()[0], path, batch)
