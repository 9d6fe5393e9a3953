"""Benchmark artifacts in a fresh process; prints one JSON line.

`latency`: the artifacts are timed interleaved (one run of each in turn), so that drift of a shared
or virtual CPU falls on all of them alike and their ratios hold. `memory`: one artifact is loaded and
run once per batch size; the process's own peak RSS is reported. `loop`: an image generator's whole sampler per
image, the models interleaved. `profile`: onnxruntime's per-node kernel
times of one ONNX model at the largest batch.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from contextlib import contextmanager
from functools import partial

import numpy as np

from ..runtimes import open_runner
from .bench import summarize, tile_batch


def peak_rss_kb() -> int:
    """This process's own peak RSS. Linux keeps ru_maxrss across execve, so a child started from a
    large parent would report the parent's peak; VmHWM belongs to the new address space."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _timed(runner, feeds) -> float:
    """Wall time, or the device time a GPU runner measured with CUDA events."""
    start = time.perf_counter()
    runner.infer(feeds)
    wall = (time.perf_counter() - start) * 1000.0
    device = getattr(runner, "last_device_ms", None)
    return wall if device is None else device


@contextmanager
def _opened(args):
    runners = [open_runner(runtime, path, args.threads) for runtime, path in args.model]
    for runner in runners:
        runner.__enter__()
    try:
        yield runners
    finally:
        for runner in runners:
            runner.__exit__(None, None, None)


def _interleaved(runners, timed, args) -> list[list[float]]:
    """Each runner's times (ms) of timed(runner), one of each in turn: at least --min-runs, then until --seconds
    per runner or --runs."""
    times: list[list[float]] = [[] for _ in runners]
    deadline = time.perf_counter() + args.seconds * len(runners)
    while len(times[0]) < args.runs and (len(times[0]) < args.min_runs or time.perf_counter() < deadline):
        for index, runner in enumerate(runners):
            times[index].append(timed(runner))
    return times


def latency(args, sample: dict[str, np.ndarray]) -> dict:
    with _opened(args) as runners:
        results: list[dict] = [{} for _ in runners]
        for batch in (int(b) for b in args.batches.split(",")):
            feeds = tile_batch(sample, batch)
            for runner in runners:
                for _ in range(args.warmup):
                    runner.infer(feeds)
            for index, measured in enumerate(_interleaved(runners, partial(_timed, feeds=feeds), args)):
                results[index][str(batch)] = summarize(measured, batch)
    return {"by_batch": results}


def loop(args, sample: dict[str, np.ndarray]) -> dict:
    """Per image through the image generator's whole sampler (every denoiser call and the sampler's own arithmetic),
    the models timed interleaved at the smallest batch size."""
    from ..samplers import get_sampler

    sampler = get_sampler(args.sampler)
    batch = min(int(b) for b in args.batches.split(","))
    feeds = tile_batch(sample, batch)

    def timed(runner) -> float:
        start = time.perf_counter()
        sampler.run(runner.infer, feeds)
        return (time.perf_counter() - start) * 1000.0

    with _opened(args) as runners:
        for runner in runners:
            sampler.run(runner.infer, feeds)
        times = _interleaved(runners, timed, args)
    return {"by_batch": [{str(batch): summarize(measured, batch)} for measured in times]}


def memory(args, sample: dict[str, np.ndarray]) -> dict:
    runtime, path = args.model[0]
    result = {}
    with open_runner(runtime, path, args.threads) as runner:
        for batch in (int(b) for b in args.batches.split(",")):
            runner.infer(tile_batch(sample, batch))
        if hasattr(runner, "peak_device_mb"):
            result["peak_gpu_mb"] = runner.peak_device_mb()
    return {**result, "peak_rss_mb": peak_rss_kb() / 1024.0}


def profile(args, sample: dict[str, np.ndarray]) -> dict:
    from .time_profile import profiled_node_times

    _, path = args.model[0]  # one model per process
    feeds = tile_batch(sample, max(int(b) for b in args.batches.split(",")))
    times = profiled_node_times(path, feeds, args.threads)
    return {"node_times": [[name, op, ms] for (name, op), ms in times.items()]}


def _model(text: str) -> tuple[str, str]:
    runtime, _, path = text.partition(":")
    return runtime, path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["latency", "loop", "memory", "profile"])
    parser.add_argument("feeds")
    parser.add_argument("--model", type=_model, action="append", required=True, help="runtime:path (repeatable)")
    parser.add_argument("--batches", default="1")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--min-runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sampler", default=None, help="loop: the sampler setting (samplers.get_sampler)")
    args = parser.parse_args()
    with np.load(args.feeds) as npz:
        sample = {key: npz[key] for key in npz.files}
    result = {"latency": latency, "loop": loop, "memory": memory, "profile": profile}[args.mode](args, sample)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
