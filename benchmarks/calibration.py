"""Calibration cost: compress-export's streaming calibrator vs onnxruntime's Entropy and Percentile
calibrators on the all-MiniLM-L6-v2 FP32 ONNX (inputs and outputs of every MatMul), same data.

Every measurement runs in a fresh process; peak RSS is that process's VmHWM.

    python benchmarks/calibration.py                      # 200 and 2000 samples, table + JSON
    python benchmarks/calibration.py --samples 200 --anchor-samples 200

onnxruntime keeps every collected activation in memory, so at 2000 samples it needs about ten times
its 200-sample peak; by default it runs only at the sizes in --anchor-samples.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "minilm.py"
BATCH = 8
METHODS = ("entropy", "percentile")


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _batches(data_path: Path, samples: int):
    with np.load(data_path) as npz:
        arrays = {key: npz[key][:samples] for key in npz.files}
    for start in range(0, samples, BATCH):
        yield {key: value[start : start + BATCH] for key, value in arrays.items()}


def worker_ours(model: Path, data: Path, samples: int, method: str) -> dict:
    from compress_export.calibration.calibrate import calibrate_onnx
    from compress_export.data.calibration_data import load_npz_data
    from compress_export.sources.onnx_source import OnnxModel
    from compress_export.specs import QuantRecipe

    specs = OnnxModel(model).inputs
    start = time.perf_counter()
    calibration = load_npz_data(data, specs, BATCH, samples)
    table = calibrate_onnx(model, calibration, QuantRecipe(method=method, include_ops=("MatMul",)), progress=False)
    return {"seconds": time.perf_counter() - start, "tensors": len(table.ranges) + len(table.skipped)}


def worker_onnxruntime(model: Path, data: Path, samples: int, method: str) -> dict:
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(_batches(data, samples))

        def get_next(self):
            return next(self.batches, None)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(
            model, ["MatMul"], augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.Entropy if method == "entropy" else CalibrationMethod.Percentile,
            extra_options={"symmetric": method == "percentile"},
        )
        calibrator.collect_data(Reader())
        ranges = calibrator.compute_data()
    return {"seconds": time.perf_counter() - start, "tensors": len(ranges.data)}


def run_worker(args) -> None:
    work = {"ours": worker_ours, "onnxruntime": worker_onnxruntime}[args.worker]
    result = work(Path(args.model), Path(args.data), args.n, args.method)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def prepare(folder: Path, samples: int) -> tuple[Path, Path]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    spec = importlib.util.spec_from_file_location("minilm_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"minilm_calib_{samples}.npz"
    if not data.exists():
        example.write_npz(example.sentences(samples, seed=1), data)
    model_path = folder / "minilm.onnx"
    if not model_path.exists():
        from compress_export.exporters.onnx.fp32 import export_fp32
        from compress_export.sources import load_model
        from compress_export.specs import TensorSpec

        specs = tuple(TensorSpec(name, ("batch", 128), "int64") for name in ("input_ids", "attention_mask"))
        model = load_model(f"{EXAMPLE}:factory", inputs=specs)
        with np.load(data) as npz:
            export_fp32(model, model_path, {key: npz[key][:4] for key in npz.files})
    return model_path, data


def measure(tool: str, method: str, model: Path, data: Path, samples: int) -> dict:
    command = [sys.executable, __file__, "--worker", tool, "--method", method, "--model", str(model),
               "--data", str(data), "--n", str(samples)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["killed"])[-1]
        return {"tool": tool, "method": method, "samples": samples, "error": tail[:200]}
    return {"tool": tool, "method": method, "samples": samples, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", default="200,2000", help="sample counts for compress-export")
    parser.add_argument("--anchor-samples", default="200", help="sample counts for onnxruntime")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--worker", choices=["ours", "onnxruntime"], help=argparse.SUPPRESS)
    parser.add_argument("--method", default="entropy", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    ours = [int(s) for s in args.samples.split(",")]
    anchor = [int(s) for s in args.anchor_samples.split(",") if s]
    model, data = prepare(args.out, max(ours + anchor))
    rows = []
    for method in METHODS:
        for samples in sorted(set(ours + anchor)):
            if samples in ours:
                rows.append(measure("ours", method, model, data, samples))
            if samples in anchor:
                rows.append(measure("onnxruntime", method, model, data, samples))
    summary = _ratios(rows)
    print(f"{'tool':12} {'method':10} {'samples':>7} {'seconds':>9} {'peak RSS MB':>12}")
    for row in rows:
        if "error" in row:
            print(f"{row['tool']:12} {row['method']:10} {row['samples']:>7} failed: {row['error']}")
        else:
            print(f"{row['tool']:12} {row['method']:10} {row['samples']:>7} {row['seconds']:>9.1f} "
                  f"{row['peak_rss_mb']:>12.0f}")
    for line in summary["lines"]:
        print(line)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration.json").write_text(json.dumps({"batch": BATCH, "rows": rows, **summary}, indent=2) + "\n")
    print(f"written {args.out / 'calibration.json'}")


def _ratios(rows: list[dict]) -> dict:
    find = {(r["tool"], r["method"], r["samples"]): r for r in rows if "error" not in r}
    ratios, lines = {}, []
    for method in METHODS:
        ours, theirs = find.get(("ours", method, 200)), find.get(("onnxruntime", method, 200))
        if ours and theirs:
            ratios[f"{method}_rss_ours_over_ort_200"] = ours["peak_rss_mb"] / theirs["peak_rss_mb"]
            ratios[f"{method}_time_ours_over_ort_200"] = ours["seconds"] / theirs["seconds"]
        big = find.get(("ours", method, 2000))
        if ours and big:
            ratios[f"{method}_rss_ours_2000_over_200"] = big["peak_rss_mb"] / ours["peak_rss_mb"]
    for key, value in ratios.items():
        lines.append(f"{key}: {value:.3f}")
    return {"ratios": ratios, "lines": lines}


if __name__ == "__main__":
    main()
