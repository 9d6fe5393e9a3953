"""Latency, throughput and peak memory, each artifact measured in a process of its own."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..util.measure_lock import measuring

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class BenchSettings:
    batches: tuple[int, ...] = (1, 32)
    warmup: int = 3
    runs: int = 1000
    seconds: float = 2.0
    min_runs: int = 5
    threads: int | None = None


def percentile_ms(sorted_ms: Sequence[float], p: float) -> float:
    """trtexec's rule: of N sorted samples drop floor((1 - p/100) * N) from the top, take the next."""
    n = len(sorted_ms)
    drop = math.floor((100.0 - p) * n / 100.0 + 1e-9)  # (1 - 0.9) * 100 is 9.999... in binary floating point
    return float(sorted_ms[max(n - drop - 1, 0)])


def summarize(times_ms: Sequence[float], batch: int) -> dict:
    ordered = sorted(times_ms)
    result = {f"p{p}_ms": percentile_ms(ordered, p) for p in PERCENTILES}
    mean = float(np.mean(ordered))
    result.update(mean_ms=mean, throughput_per_s=batch * 1000.0 / mean if mean > 0 else 0.0, runs=len(ordered))
    return result


def tile_batch(sample: dict[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """A feed of `batch` rows made by repeating real held-out rows."""
    out = {}
    for name, value in sample.items():
        reps = math.ceil(batch / value.shape[0])
        out[name] = np.concatenate([value] * reps)[:batch]
    return out


def _worker(mode: str, models: list[tuple[str, Path]], sample: dict[str, np.ndarray],
            settings: BenchSettings, *extra: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="ce-bench-") as tmp:
        feeds = Path(tmp) / "feeds.npz"
        np.savez(feeds, **sample)
        command = [sys.executable, "-m", "compress_export.validators.bench_worker", mode, str(feeds),
                   "--batches", ",".join(map(str, settings.batches)), "--warmup", str(settings.warmup),
                   "--runs", str(settings.runs), "--seconds", str(settings.seconds),
                   "--min-runs", str(settings.min_runs)]
        for runtime, path in models:
            command += ["--model", f"{runtime}:{path}"]
        if settings.threads:
            command += ["--threads", str(settings.threads)]
        command += extra
        with measuring():
            done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportError(f"benchmark of {', '.join(path.name for _, path in models)} failed: {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def latency_in_subprocess(models: list[tuple[str, Path]], sample: dict[str, np.ndarray],
                          settings: BenchSettings) -> list[dict]:
    """Per-batch latency of each model, timed interleaved in one fresh process."""
    return _worker("latency", models, sample, settings)["by_batch"]


def sampler_loop_in_subprocess(models: list[tuple[str, Path]], sample: dict[str, np.ndarray], settings: BenchSettings,
                               sampler) -> list[dict]:
    """Per image through the whole sampler loop, each model timed interleaved in one fresh process, at the smallest
    batch size (each image there takes every denoiser call)."""
    return _worker("loop", models, sample, settings, "--sampler", sampler.setting())["by_batch"]


def node_times_in_subprocess(paths: list[Path], sample: dict[str, np.ndarray],
                              settings: BenchSettings) -> list[dict[tuple[str, str], float]]:
    """onnxruntime's per-node kernel times (ms per run) of each ONNX model at the largest batch, each alone in a
    fresh process (PP-OCRv4's detector profiled beside another large session read its elementwise ops 2.7x slower)."""
    return [{(name, op): ms for name, op, ms in _worker("profile", [("onnxruntime", path)], sample, settings)
             ["node_times"]} for path in paths]


def memory_in_subprocess(runtime: str, path: Path, sample: dict[str, np.ndarray], settings: BenchSettings) -> dict:
    """Peak RSS (MB), and GPU memory where the runner measures it, of a fresh process that loads the
    model and runs each batch size once."""
    return _worker("memory", [(runtime, path)], sample, settings)
