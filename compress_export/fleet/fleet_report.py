"""The fleet's report: a row per model x recipe x target (pass/fail, gate values, speed-up against FP32 at each
batch, size, MACs, A/A, the node it was measured on), the best passing artifact per model and device by a stated
rule, what was shared, and the fleet's exit code. fleet.json for CI, fleet.md for people, a Pareto plot per model."""

from __future__ import annotations

import json
from pathlib import Path

from ..bundle.writer import write_text_atomic
from ..errors import EXIT_OK

PICKS = {
    "fastest": "the passing artifact with the highest speed-up against FP32 at the largest batch timed (then the "
               "smaller)",
    "smallest": "the smallest passing artifact (then the faster)",
}
# The device a runtime's artifacts ship to: the best artifact is chosen per model and device.
DEVICES = {"onnxruntime": "cpu", "tensorrt": "nvidia-gpu", "litert": "edge (LiteRT)", "onnxruntime-genai": "cpu",
           "torch": "cpu", "keras": "cpu"}


def fleet_rows(records: list[dict]) -> list[dict]:
    rows = []
    for record in records:
        folder = Path(record.get("folder") or "")
        base = {"model": record.get("model"), "recipe": record.get("recipe"), "state": record.get("state"),
                "node": record.get("node", ""), "host": record.get("host", ""), "attempts": record.get("attempts", 0),
                "seconds": record.get("seconds")}
        if record.get("regated_from"):
            base["regated_from"] = record["regated_from"]
        if not record.get("bundles"):
            rows.append({**base, "target": None, "passed": False, "exit_code": record.get("exit_code"),
                         "error": record.get("error", "")})
            continue
        for name in record["bundles"]:
            rows.append({**base, **_bundle_row(folder / name)})
    return rows


def _bundle_row(bundle: Path) -> dict:
    try:
        report = json.loads((bundle / "report.json").read_text())
    except (OSError, ValueError) as exc:
        return {"target": bundle.name, "passed": False, "error": f"no readable report ({exc})"}
    ratios = (report.get("bench") or {}).get("ratios") or {}
    speedups = {key.removeprefix("speedup_p50_batch"): value for key, value in ratios.items()
                if key.startswith("speedup_p50_batch")}
    if not speedups and "speedup_decode" in ratios:
        speedups = {"decode": ratios["speedup_decode"]}
    a_a = (report.get("bench") or {}).get("a_a") or {}
    calibration = report.get("calibration") or {}
    return {
        "target": report.get("target", bundle.name),
        "bundle": str(bundle),
        "passed": bool(report.get("passed")),
        "exit_code": report.get("exit_code"),
        "runtime": (report.get("artifact") or {}).get("runtime"),
        "gates": [{key: row.get(key) for key in ("gate", "value", "limit", "passed")}
                  for row in report.get("gate_results", [])],
        "speedup": speedups,
        "size_bytes": (report.get("artifact") or {}).get("size_bytes"),
        "macs": ((report.get("flops") or {}).get("candidate") or {}).get("macs"),
        "a_a_worst": max((abs(value - 1.0) for value in a_a.values()), default=None),
        "statistics": calibration.get("statistics"),
        "measured_on": ((report.get("bench") or {}).get("machine") or {}).get("processor"),
    }


def headline_speedup(row: dict) -> float | None:
    """The speed-up at the largest batch timed (decode speed for a language model)."""
    speedups = row.get("speedup") or {}
    if not speedups:
        return None
    numeric = [key for key in speedups if key.isdigit()]
    key = max(numeric, key=int) if numeric else next(iter(speedups))
    return speedups[key]


def best_per_device(rows: list[dict], pick: str) -> list[dict]:
    chosen: dict[tuple[str, str], dict] = {}
    for row in rows:
        if not row.get("passed") or row.get("target") is None:
            continue
        device = DEVICES.get(row.get("runtime") or "", row.get("runtime") or "unknown")
        key = (row["model"], device)
        if key not in chosen or _rank(row, pick) > _rank(chosen[key], pick):
            chosen[key] = row
    return [{"model": model, "device": device, "recipe": row["recipe"], "target": row["target"],
             "speedup": headline_speedup(row), "size_bytes": row.get("size_bytes"), "bundle": row.get("bundle")}
            for (model, device), row in sorted(chosen.items())]


def _rank(row: dict, pick: str) -> tuple:
    speed = headline_speedup(row) or 0.0
    size = -(row.get("size_bytes") or 0)
    return (speed, size) if pick == "fastest" else (size, speed)


def fleet_exit_code(records: list[dict]) -> int:
    return max((int(record.get("exit_code") or 0) for record in records), default=EXIT_OK)


def fleet_summary(fleet_path: Path, records: list[dict], pick: str, seconds: float) -> dict:
    rows = fleet_rows(records)
    # one entry per job that ran its export (a re-gated job carries its source's report, not a pass of its own)
    statistics = list({(row["model"], row["recipe"]): row["statistics"] for row in rows
                       if row.get("statistics") and not row.get("regated_from")}.values())
    a_a = [row["a_a_worst"] for row in rows if row.get("a_a_worst") is not None]
    code = fleet_exit_code(records)
    return {
        "schema": "compress-export/fleet@1",
        "fleet": str(fleet_path),
        "passed": code == EXIT_OK,
        "exit_code": code,
        "seconds": round(seconds, 3),
        "pick": {"rule": pick, "means": PICKS[pick]},
        "best": best_per_device(rows, pick),
        "shared": {
            # a model's jobs run one calibration pass between them: "reused" counts the passes not run again
            "statistics_collected": statistics.count("collected"),
            "statistics_reused": statistics.count("reused"),
            "regated": sum(1 for record in records if record.get("regated_from")),
            "skipped_as_finished": sum(1 for record in records if record.get("state") == "skipped"),
        },
        "a_a_worst": max(a_a, default=None),
        "rows": rows,
        "jobs": records,
    }


def fleet_markdown(summary: dict) -> str:
    verdict = "PASSED" if summary["passed"] else f"FAILED (exit {summary['exit_code']})"
    shared = summary["shared"]
    lines = [f"# Fleet {summary['fleet']}: {verdict}", "",
             f"{len(summary['jobs'])} jobs in {summary['seconds']:.1f} s; calibration passes run "
             f"{shared['statistics_collected']}, reused {shared['statistics_reused']}; re-gated "
             f"{shared['regated']}; skipped as finished {shared['skipped_as_finished']}.", ""]
    if summary["a_a_worst"] is not None:
        lines += [f"Worst A/A deviation of any benchmark in the fleet: {summary['a_a_worst'] * 100:.1f}% "
                  "(the FP32 model against itself; beyond 5% a speed-up is noise).", ""]
    lines += [f"## Best per model and device ({summary['pick']['rule']}: {summary['pick']['means']})", "",
              "| model | device | recipe | target | speed-up | size (KB) |", "|---|---|---|---|---|---|"]
    for best in summary["best"]:
        speed = f"{best['speedup']:.2f}x" if best["speedup"] else "-"
        lines.append(f"| {best['model']} | {best['device']} | {best['recipe']} | {best['target']} | {speed} | "
                     f"{(best['size_bytes'] or 0) / 1024:.1f} |")
    lines += ["", "## Every artifact", "",
              "| model | recipe | target | result | gates | speed-up vs FP32 | size (KB) | MACs | node |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row in summary["rows"]:
        if row.get("target") is None:
            lines.append(f"| {row['model']} | {row['recipe']} | - | FAILED (exit {row.get('exit_code')}): "
                         f"{row.get('error', '')} | | | | | {row.get('host', '')} |")
            continue
        gates = ", ".join(f"{gate['gate']} {gate['value']:.4g}" for gate in row["gates"] if gate["value"] is not None)
        speed = ", ".join(f"b{batch} {value:.2f}x" for batch, value in row["speedup"].items())
        result = "pass" if row["passed"] else "FAIL"
        if row.get("regated_from"):
            result += f" (re-gated from {row['regated_from']})"
        elif row.get("state") == "skipped":
            result += " (finished before)"
        macs = f"{row['macs']:.3g}" if row.get("macs") else "-"
        lines.append(f"| {row['model']} | {row['recipe']} | {row['target']} | {result} | {gates} | {speed or '-'} | "
                     f"{(row.get('size_bytes') or 0) / 1024:.1f} | {macs} | {row.get('host', '')} "
                     f"{(row.get('node') or '')[:8]} |")
    return "\n".join(lines) + "\n"


def write_fleet_report(out: Path, summary: dict) -> None:
    write_text_atomic(out / "fleet.json", json.dumps(summary, indent=2) + "\n")
    write_text_atomic(out / "fleet.md", fleet_markdown(summary))
    from .pareto import plot_pareto

    for model in dict.fromkeys(row["model"] for row in summary["rows"]):
        plot_pareto([row for row in summary["rows"] if row["model"] == model], out / f"pareto-{model}.png")
