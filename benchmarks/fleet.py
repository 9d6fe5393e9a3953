"""A fleet's wall time: the same jobs (published models x recipes) run as a shell loop would run them (one
`compress-export run` after the other, each collecting its own statistics) and as `compress-export sweep` with 1 and 2
workers, calibration sharing on and off, in one run of this script. Each mode writes into a fresh folder, so nothing is
skipped as finished. Reported: wall time per mode and its ratio to the loop, calibration passes run and reused, each
job's compute and measurement time (the measurement is exclusive per machine, so it does not scale with workers),
whether every artifact is byte-identical across modes, and the worst A/A deviation of any benchmark taken.

    python benchmarks/fleet.py                         # PP-OCRv4 det, rec and the direction classifier x 2 recipes
    python benchmarks/fleet.py --models det,cls --calibration 32
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.real_models import MODELS, models_folder, write_data  # noqa: E402

RECIPES = {  # a fixed artifact per recipe (no budget search), so every mode builds the same thing
    "entropy": "{to: [onnx-int8], calibrator: entropy, no-fallback: true, %s}",
    "percentile": "{to: [onnx-int8], calibrator: percentile, no-fallback: true, %s}",
}
MODES = [("loop", None, True), ("sweep-1", 1, True), ("sweep-2", 2, True), ("sweep-2-no-share", 2, False)]


def write_fleet(folder: Path, models: list[str], calibration: int, validation: int, bench: str) -> Path:
    source = models_folder()
    lines = ["models:"]
    for name in models:
        calib, val = write_data(folder / "data", name, calibration, validation)
        lines.append(f"  {name}: {{model: {source / MODELS[name][0]}, calib-data: {calib}, val-data: {val}}}")
    lines.append("recipes:")
    lines += [f"  {name}: {text % bench}" for name, text in RECIPES.items()]
    path = folder / "fleet.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_loop(fleet: Path, out: Path) -> float:
    """Every job as a single run, one after the other (the job recipes a sweep would write, written here)."""
    from compress_export.cli.main import export_command
    from compress_export.fleet.fleet_file import read_fleet
    from compress_export.fleet.job_state import write_job_recipe

    started = time.perf_counter()
    for job in read_fleet(fleet, export_command).jobs:
        folder = out / job.model / job.recipe
        recipe = write_job_recipe(folder, job.values)
        done = subprocess.run([sys.executable, "-m", "compress_export", "run", str(recipe), "--out", str(folder),
                               "-q"], capture_output=True, text=True)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{job.name}: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - started


def run_sweep(fleet: Path, out: Path, workers: int, share: bool) -> float:
    command = [sys.executable, "-m", "compress_export", "sweep", str(fleet), "--out", str(out), "-q",
               "--workers", str(workers)] + ([] if share else ["--no-share"])
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"sweep failed: {done.stderr.strip().splitlines()[-3:]}")
    return time.perf_counter() - started


def bundles(out: Path) -> dict[str, dict]:
    found = {}
    for report_path in sorted(out.glob("*/*/*/report.json")):
        report = json.loads(report_path.read_text())
        manifest = json.loads((report_path.parent / "manifest.json").read_text())
        window = report["bench"].get("window") or [0.0, 0.0]
        found[str(report_path.parent.relative_to(out))] = {
            "artifact_sha256": manifest["files"].get(report["artifact"]["path"]),
            "statistics": (report.get("calibration") or {}).get("statistics"),
            "measure_s": window[1] - window[0],
            "a_a_worst": max((abs(v - 1.0) for v in report["bench"].get("a_a", {}).values()), default=0.0),
            "passed": report["passed"],
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="det,rec,cls")
    parser.add_argument("--calibration", type=int, default=64)
    parser.add_argument("--validation", type=int, default=32)
    parser.add_argument("--bench", default="bench-seconds: 2.0, bench-batch: '1,8'")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if models_folder() is None:
        raise SystemExit("rapidocr-onnxruntime is not installed: pip install --no-deps rapidocr-onnxruntime==1.4.4")
    from compress_export.runtimes.machine import platform_info

    models = args.models.split(",")
    results = {"machine": platform_info(), "models": models, "recipes": list(RECIPES), "modes": {}}
    with tempfile.TemporaryDirectory(prefix="ce-fleet-bench-") as tmp:
        fleet = write_fleet(Path(tmp), models, args.calibration, args.validation, args.bench)
        for mode, workers, share in MODES:
            out = Path(tmp) / mode
            seconds = run_loop(fleet, out) if workers is None else run_sweep(fleet, out, workers, share)
            found = bundles(out)
            jobs = {}
            for path in out.glob("*/*/job.json"):
                jobs[str(path.parent.relative_to(out))] = json.loads(path.read_text()).get("seconds")
            results["modes"][mode] = {"wall_s": round(seconds, 2), "bundles": found, "job_seconds": jobs,
                                      "statistics": [b["statistics"] for b in found.values()]}
            print(f"{mode}: {seconds:.1f} s", file=sys.stderr)
    write_results(results, args.out)


def write_results(results: dict, out: Path) -> None:
    modes = results["modes"]
    loop = modes["loop"]
    reference = {name: bundle["artifact_sha256"] for name, bundle in loop["bundles"].items()}
    lines = [f"# Fleet wall time: {len(loop['bundles'])} jobs ({', '.join(results['models'])} x "
             f"{', '.join(results['recipes'])})", "",
             f"CPU: {results['machine']['processor']}, {results['machine']['cpus']} cores "
             f"({results['machine']['int8_features']}). One run of each mode, in this order.", "",
             "| mode | wall (s) | vs loop | passes run | passes reused | artifacts identical to the loop's | "
             "worst A/A |", "|---|---|---|---|---|---|---|"]
    for mode, data in modes.items():
        same = all(data["bundles"].get(name, {}).get("artifact_sha256") == sha for name, sha in reference.items())
        worst = max((b["a_a_worst"] for b in data["bundles"].values()), default=0.0)
        lines.append(f"| {mode} | {data['wall_s']:.1f} | {loop['wall_s'] / data['wall_s']:.2f}x | "
                     f"{data['statistics'].count('collected')} | {data['statistics'].count('reused')} | "
                     f"{'yes' if same else 'NO'} | {worst * 100:.1f}% |")
        data["identical_to_loop"] = same
    measure = sum(b["measure_s"] for b in loop["bundles"].values())
    job_total = sum(v or 0.0 for v in modes["sweep-2"]["job_seconds"].values())
    lines += ["", f"Measurement (exclusive per machine) took {measure:.1f} s of the loop's {loop['wall_s']:.1f} s; "
              f"the 2-worker sweep's jobs took {job_total:.1f} s between them.", ""]
    results["estimate_4_nodes_s"] = round(estimate(modes, 4), 1)
    lines += [f"Estimate for 4 such nodes (2 workers each): {results['estimate_4_nodes_s']:.1f} s "
              "(compute spread over 4x the workers, measurement over 4 machines, one job's length as the floor).", ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "fleet.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "fleet.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def estimate(modes: dict, nodes: int) -> float:
    """On paper from the loop's per-job phases: compute (job time less its measurement) in parallel over every
    worker of every node, measurement one at a time per node, and no less than the longest job."""
    loop = modes["loop"]
    measure = sum(b["measure_s"] for b in loop["bundles"].values())
    jobs = [seconds or 0.0 for seconds in modes["sweep-1"]["job_seconds"].values()]
    compute = max(sum(jobs) - measure, 0.0)
    return max(compute / (2 * nodes) + measure / nodes, max(jobs, default=0.0))


if __name__ == "__main__":
    main()
