"""Benchmark one artifact in a fresh process; prints one JSON line. Peak RSS is this process's own."""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from .bench import summarize, tile_batch
from .runtimes import open_runner


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runtime")
    parser.add_argument("model")
    parser.add_argument("feeds")
    parser.add_argument("--batches", default="1")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--min-runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    with np.load(args.feeds) as npz:
        sample = {key: npz[key] for key in npz.files}
    results = {}
    with open_runner(args.runtime, args.model, args.threads) as runner:
        for batch in (int(b) for b in args.batches.split(",")):
            feeds = tile_batch(sample, batch)
            for _ in range(args.warmup):
                runner.infer(feeds)
            times: list[float] = []
            deadline = time.perf_counter() + args.seconds
            while len(times) < args.runs and (len(times) < args.min_runs or time.perf_counter() < deadline):
                start = time.perf_counter()
                runner.infer(feeds)
                times.append((time.perf_counter() - start) * 1000.0)
            results[str(batch)] = summarize(times, batch)
    print(json.dumps({"by_batch": results, "peak_rss_mb": peak_rss_kb() / 1024.0}))


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


if __name__ == "__main__":
    main()
