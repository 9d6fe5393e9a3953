"""Latency and memory of each artifact beside the FP32 model in the artifact's own runtime."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..graphs.onnx_io import artifact_bytes
from ..util.measure_lock import measuring
from .bench import BenchSettings, latency_in_subprocess, memory_in_subprocess, sampler_loop_in_subprocess


class Benchmarker:
    """Each artifact timed side by side with the FP32 reference in one process, its peak RSS in another."""

    def __init__(self, settings: BenchSettings, validation, count: int, progress: bool):
        from tqdm import tqdm

        self.settings = settings
        self.sample = bench_sample(validation, settings)
        self.sampler = validation.sampler
        self.reference_memory: dict[Path, dict] = {}
        self.bar = tqdm(total=count, unit="artifact", desc="benchmarking", disable=not progress, file=sys.stderr,
                        leave=False)

    def compare(self, runtime: str, path: Path, reference_model: tuple[str, Path],
                other_fp32: Sequence[tuple[str, Path]] = ()) -> dict:
        """`reference_model`: the FP32 model in the candidate's runtime, (runtime, path). `other_fp32`: the FP32 model
        in other runtimes, timed in the same process, so the ratios also say how the candidate fares against the
        fastest way to run the unquantized model on this machine."""
        reference_runtime, reference_path = reference_model
        with measuring():  # the machine to this artifact's timing and memory alone (another job waits)
            started = time.time()
            # The reference twice: its two copies must time alike (the A/A check), or the ratios mean nothing.
            reference, twin, candidate, *others = latency_in_subprocess(
                [reference_model, reference_model, (runtime, path), *other_fp32], self.sample, self.settings)
            if reference_path not in self.reference_memory:
                self.reference_memory[reference_path] = memory_in_subprocess(reference_runtime, reference_path,
                                                                             self.sample, self.settings)
            candidate_memory = memory_in_subprocess(runtime, path, self.sample, self.settings)
            loop = self.sampler and sampler_loop_in_subprocess([reference_model, (runtime, path)], self.sample,
                                                               self.settings, self.sampler)
            window = [started, time.time()]
        self.bar.update(1)
        result = {
            "reference": flat_bench(reference, self.reference_memory[reference_path], artifact_bytes(reference_path),
                                    self.settings),
            "candidate": flat_bench(candidate, candidate_memory, artifact_bytes(path), self.settings),
            "method": "reference, a second copy of it and the candidate timed interleaved in one process, "
                      "intra-op thread spinning off; peak RSS each in its own",
            "threads": self.settings.threads or os.cpu_count(),
            "window": window,  # when it was measured (seconds since the epoch): a fleet's timings never overlap
            "a_a": {batch: stats["p50_ms"] / twin[batch]["p50_ms"] for batch, stats in reference.items()
                    if batch in twin},
        }
        result["ratios"] = ratios(result["reference"], result["candidate"])
        if loop:
            result["per_image_loop"] = {"reference": loop[0], "candidate": loop[1], "method": (
                "the whole sampler per image (every denoiser call and the sampler's arithmetic), FP32 and the "
                "candidate interleaved in one process")}
        if other_fp32:
            result.update(against_fastest_fp32({reference_runtime: reference, **{
                other_runtime: timed for (other_runtime, _), timed in zip(other_fp32, others, strict=True)}},
                candidate))
        return result

    def skip(self) -> None:
        """An artifact not timed here: the progress bar counts it."""
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def bench_sample(validation, settings: BenchSettings) -> dict[str, np.ndarray]:
    feeds = validation.batches[0][0]
    return {name: value[: max(settings.batches)] for name, value in feeds.items()}


def flat_bench(by_batch: dict, memory: dict, size_bytes: int, settings: BenchSettings) -> dict:
    """The first batch size's numbers at the top level, every batch size under `by_batch`."""
    first = by_batch[str(settings.batches[0])]
    return {**first, "batch": settings.batches[0], "by_batch": by_batch, **memory, "size_bytes": size_bytes}


def against_fastest_fp32(fp32_by_runtime: dict[str, dict], candidate: dict) -> dict:
    """The FP32 model's p50 in each runtime, and the candidate's speed-up over the fastest of them, per batch."""
    fastest, result = {}, {}
    for batch, stats in candidate.items():
        timed = {runtime: by_batch[batch]["p50_ms"] for runtime, by_batch in fp32_by_runtime.items()
                 if batch in by_batch}
        runtime = min(timed, key=timed.get)
        fastest[batch] = runtime
        result[f"speedup_p50_batch{batch}"] = timed[runtime] / stats["p50_ms"]
    return {"fp32_runtimes": {runtime: {batch: stats["p50_ms"] for batch, stats in by_batch.items()}
                              for runtime, by_batch in fp32_by_runtime.items()},
            "fastest_fp32": fastest, "ratios_vs_fastest_fp32": result}


def ratios(reference: dict, candidate: dict) -> dict:
    result = {"size": candidate["size_bytes"] / reference["size_bytes"],
              "peak_rss": candidate["peak_rss_mb"] / reference["peak_rss_mb"]}
    for batch, stats in candidate["by_batch"].items():
        base = reference["by_batch"].get(batch)
        if base:
            result[f"speedup_p50_batch{batch}"] = base["p50_ms"] / stats["p50_ms"]
    return result


A_A_TOLERANCE = 0.05  # the FP32 model against itself must measure 1.00x within this


def noise_warnings(a_a: dict) -> list[str]:
    """The A/A check: where two copies of one model time apart, speed ratios of that size mean nothing."""
    return [f"timings are noisy at batch {batch}: the FP32 model measured {ratio:.2f}x against itself; speedups "
            f"within {abs(ratio - 1):.0%} of 1.00x are not meaningful on this machine now"
            for batch, ratio in a_a.items() if abs(ratio - 1.0) > A_A_TOLERANCE]


def speed_warnings(ratios: dict) -> list[str]:
    warnings = []
    for key, value in ratios.items():
        if key.startswith("speedup_p50_batch") and value < 1.0:
            batch = key.removeprefix("speedup_p50_batch")
            warnings.append(f"not faster than FP32 at batch {batch} (p50 speedup {value:.2f}x)")
    return warnings
