"""A model's artifacts across the fleet's recipes: quality (its first gate's value) against speed-up, marker area the
size on disk, the Pareto front (no other artifact both faster and better) drawn as a line."""

from __future__ import annotations

from pathlib import Path

from ..report.plots import scatter_by_size
from .fleet_report import headline_speedup


def pareto_points(rows: list[dict]) -> tuple[list[tuple[str, float, float, int]], str]:
    """(recipe/target, speed-up, quality, size) of every measured artifact, and the quality's gate."""
    gate = next((row["gates"][0]["gate"] for row in rows if row.get("gates")), "")
    points = []
    for row in rows:
        speed = headline_speedup(row)
        quality = next((g["value"] for g in row.get("gates", []) if g["gate"] == gate and g["value"] is not None),
                       None)
        if speed is not None and quality is not None:
            points.append((f"{row['recipe']}/{row['target']}", speed, quality, row.get("size_bytes") or 0))
    return points, gate


def front(points: list[tuple[str, float, float, int]], higher_is_better: bool = True) -> list[tuple[float, float]]:
    """The points no other point beats on both speed-up and quality, by speed-up."""
    sign = 1.0 if higher_is_better else -1.0
    kept = [(x, y) for _, x, y, _ in points
            if not any(ox >= x and sign * oy >= sign * y and (ox, oy) != (x, y) for _, ox, oy, _ in points)]
    return sorted(set(kept))


def plot_pareto(rows: list[dict], path: Path) -> bool:
    points, gate = pareto_points(rows)
    if not points:
        return False
    from ..metrics import all_gates

    higher = next((g.higher_is_better for g in all_gates() if gate.split("[")[0] == g.name), True)
    line = front(points, higher)

    def draw_front(axes) -> None:
        axes.plot([x for x, _ in line], [y for _, y in line], linestyle="--", linewidth=1, alpha=0.6)

    direction = "higher" if higher else "lower"
    return scatter_by_size(points, path, "speed-up against FP32 at the largest batch timed (higher is better)",
                           f"{gate} ({direction} is better)", f"{rows[0]['model']}: quality vs speed-up "
                           "(marker area: size on disk)", draw_front)
