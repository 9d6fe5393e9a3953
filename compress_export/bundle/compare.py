"""Two runs side by side: bundles (a folder with report.json), whole runs (a folder with summary.json) or sweeps (a
folder with fleet.json), matched by target (model/recipe/target for sweeps). Per target: every gate's value, the
speed-up against FP32 timed beside it (comparable across machines, unlike raw milliseconds, which are shown too),
size and MACs, each with its change; and regression gates for CI, the exit code saying whether B may replace A."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError


@dataclass(frozen=True)
class Limits:
    latency_regression: float = 5.0  # percent slower (speed-up against FP32) at any batch
    quality_drop: float = 0.005  # any gate's value, in its own units
    size_growth: float = 5.0  # percent


def reports(folder: Path) -> dict[str, dict]:
    """{target: report} of a bundle or of a run's output folder."""
    folder = Path(folder)
    if (folder / "report.json").is_file():
        report = _json(folder / "report.json")
        return {report["target"]: report}
    if (folder / "summary.json").is_file():
        summary = _json(folder / "summary.json")
        return {entry["target"]: entry["report"] for entry in summary.get("targets", []) if entry.get("report")}
    if (folder / "fleet.json").is_file():  # a sweep: every bundle by model/recipe/target, read from the folder
        fleet = _json(folder / "fleet.json")
        return {f"{row['model']}/{row['recipe']}/{row['target']}": _json(folder / row["model"] / row["recipe"]
                                                                        / row["target"] / "report.json")
                for row in fleet.get("rows", []) if row.get("target")
                and (folder / row["model"] / row["recipe"] / row["target"] / "report.json").is_file()}
    raise UsageError(f"{folder}: neither a bundle (report.json), a run's output folder (summary.json) nor a "
                     "sweep's (fleet.json)")


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read ({exc})") from None


def compare(a: Path, b: Path, limits: Limits) -> dict:
    before, after = reports(a), reports(b)
    common = [target for target in before if target in after]
    if not common:
        raise UsageError(f"{a} and {b} share no target ({', '.join(before)} / {', '.join(after)})")
    rows = [compare_target(target, before[target], after[target], limits) for target in common]
    return {"a": str(a), "b": str(b), "limits": limits.__dict__, "targets": rows,
            "only_in_a": [t for t in before if t not in after], "only_in_b": [t for t in after if t not in before],
            "passed": all(row["passed"] for row in rows)}


def compare_target(target: str, a: dict, b: dict, limits: Limits) -> dict:
    from ..metrics import all_gates

    higher = {gate.name: gate.higher_is_better for gate in all_gates()}
    rows, failures = [], []
    values_a = {row["gate"]: row["value"] for row in a.get("gate_results", [])}
    for row in b.get("gate_results", []):
        name, value = row["gate"], row["value"]
        if name not in values_a or value is None or values_a[name] is None:
            continue
        better_up = higher.get(name.split("[")[0], True)
        drop = (values_a[name] - value) if better_up else (value - values_a[name])
        rows.append({"what": name, "a": values_a[name], "b": value, "change": _percent(values_a[name], value)})
        if drop > limits.quality_drop:
            failures.append(f"{name} {values_a[name]:.4g} -> {value:.4g}")
    for key, value_b in (b.get("bench", {}).get("ratios") or {}).items():
        value_a = (a.get("bench", {}).get("ratios") or {}).get(key)
        if not key.startswith("speedup_p50_batch") or value_a is None:
            continue
        batch = key.removeprefix("speedup_p50_batch")
        rows.append({"what": f"speed-up vs FP32 @ batch {batch}", "a": value_a, "b": value_b,
                     "change": _percent(value_a, value_b)})
        for side, report in (("a", a), ("b", b)):
            stats = report["bench"]["candidate"]["by_batch"].get(batch, {})
            rows[-1][f"p50_ms_{side}"] = stats.get("p50_ms")
        if (value_a / value_b - 1) * 100 > limits.latency_regression:
            failures.append(f"batch {batch} {(value_a / value_b - 1) * 100:.1f}% slower against FP32")
    size_a, size_b = a["artifact"]["size_bytes"], b["artifact"]["size_bytes"]
    rows.append({"what": "size (bytes)", "a": size_a, "b": size_b, "change": _percent(size_a, size_b)})
    if (size_b / size_a - 1) * 100 > limits.size_growth:
        failures.append(f"size {(size_b / size_a - 1) * 100:.1f}% larger")
    macs_a, macs_b = (report.get("flops", {}).get("candidate", {}).get("macs") for report in (a, b))
    if macs_a and macs_b:
        rows.append({"what": "MACs per sample", "a": macs_a, "b": macs_b, "change": _percent(macs_a, macs_b)})
    return {"target": target, "rows": rows, "regressions": failures, "passed": not failures,
            "gates_passed": {"a": a.get("passed"), "b": b.get("passed")}}


def _percent(a: float, b: float) -> float | None:
    return None if not a else 100.0 * (b - a) / abs(a)


def markdown(result: dict) -> str:
    lines = [f"# {result['a']} -> {result['b']}", ""]
    for target in result["targets"]:
        verdict = "no regression" if target["passed"] else "REGRESSION: " + "; ".join(target["regressions"])
        lines += [f"## {target['target']}: {verdict}", "", "| | A | B | change |", "|---|---|---|---|"]
        for row in target["rows"]:
            change = "" if row["change"] is None else f"{row['change']:+.1f}%"
            lines.append(f"| {row['what']} | {row['a']:.6g} | {row['b']:.6g} | {change} |")
        lines.append("")
    for side in ("only_in_a", "only_in_b"):
        if result[side]:
            lines.append(f"{side.replace('_', ' ')}: {', '.join(result[side])}")
    return "\n".join(lines) + "\n"
