"""The plots of a run and of each bundle: quality against latency relative to FP32 (marker area: size on disk),
for the targets of a network and for a language model's decoders (perplexity against decode tokens/s)."""

from __future__ import annotations

from pathlib import Path

from .report import Report


def marker_areas(sizes: list[int], largest: float = 600.0, smallest: float = 30.0) -> list[float]:
    """Marker areas proportional to artifact size, the largest artifact at `largest` points^2."""
    top = max(sizes, default=0)
    return [max(smallest, largest * size / top) if top > 0 else smallest for size in sizes]


def label_offsets(points: list[tuple[float, float]], step: int = 11) -> list[tuple[int, int]]:
    """Text offsets (points) that stack the labels of markers near each other (a label is about a fifth of the
    plot wide) instead of overprinting them."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x_span = max(max(xs, default=0) - min(xs, default=0), 1e-9)
    y_span = max(max(ys, default=0) - min(ys, default=0), 1e-9)
    offsets: list[tuple[int, int]] = []
    for index, (x, y) in enumerate(points):
        near = sum(1 for other in points[:index]
                   if abs(other[0] - x) < 0.25 * x_span and abs(other[1] - y) < 0.1 * y_span)
        offsets.append((8, 6 - step * near))
    return offsets


def plot_tradeoff(points: list[tuple[str, float, float, int]], quality_label: str, path: Path, batch: str) -> bool:
    """Quality vs latency scatter, marker area proportional to size; returns False when matplotlib is missing."""
    qualities = [quality for _, _, quality, _ in points]

    def limits(axes) -> None:
        if qualities and max(qualities) <= 1.0:  # accuracy, cosine and agreements never pass 1
            low = min(qualities)
            axes.set_ylim(max(low - max(0.2 * (1.0 - low), 0.005), 0.0), 1.0 + max(0.05 * (1.0 - low), 0.001))

    return scatter_by_size(points, path, f"p50 latency at batch {batch}, relative to FP32 timed beside it (lower is "
                           "better)", f"{quality_label}, higher is better",
                           f"{quality_label} vs latency (marker area: size on disk)", limits)


def scatter_by_size(points: list[tuple[str, float, float, int]], path: Path, xlabel: str, ylabel: str, title: str,
                    adjust=None) -> bool:
    """(label, x, y, size in bytes) points, marker area proportional to size, labels stacked where markers crowd;
    `adjust(axes)` before saving. False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(6.5, 4.2), dpi=100)
    areas = marker_areas([size for *_, size in points])
    offsets = label_offsets([(x, y) for _, x, y, _ in points])
    for (label, x, y, size), area, offset in zip(points, areas, offsets, strict=True):
        axes.scatter([x], [y], s=area, alpha=0.6)
        axes.annotate(f"{label} ({size / 1e6:.1f} MB)" if size >= 1e5 else f"{label} ({size / 1e3:.0f} KB)",
                      (x, y), textcoords="offset points", xytext=offset, fontsize=8)
    if adjust is not None:
        adjust(axes)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)
    return True


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


def plot_generation_tradeoff(reports: list, path: Path) -> bool:
    """Perplexity vs decode tokens/s of FP32 and every target (marker area: size on disk)."""
    points = []
    for report in reports:
        if not report.bench or not report.metrics.get("candidate", {}).get("perplexity"):
            continue
        if not points:
            reference = report.bench["reference"]
            points.append(("FP32", reference.get("decode_tokens_per_s"), report.metrics["reference"]["perplexity"],
                           reference["size_bytes"]))
        candidate = report.bench["candidate"]
        points.append((report.target, candidate.get("decode_tokens_per_s"), report.metrics["candidate"]["perplexity"],
                       candidate["size_bytes"]))
    points = [point for point in points if point[1]]
    return bool(points) and scatter_by_size(points, path, "decode tokens/s (higher is better)",
                                            "perplexity on held-out text (lower is better)",
                                            "perplexity vs decode speed (marker area: size on disk)")
