"""Where a quantized onnxruntime artifact spends its time, from onnxruntime's own per-node profile of it and of
the FP32 model on the same batch: integer kernels, quantize/dequantize, and the float ops left between them.

The float ops bound the speed-up whatever the INT8 kernels do: FP32 time / (artifact time outside its integer
kernels) is the most the artifact could gain with integer arithmetic at no cost. When that bound is low the
report names the float nodes that hold it there (on PP-OCRv4's detector: the learnable affine blocks' Mul/Add
and the hard-swish around every INT8 Conv, which run in float in both graphs)."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from .fusion import INTEGER_KERNELS

QUANTIZE_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
RUNS = 3
SLOWEST = 8


def profiled_node_times(path: Path, feeds: dict[str, np.ndarray],
                        threads: int | None = None) -> dict[tuple[str, str], float]:
    """{(node name, op type): ms per run} of one model as onnxruntime executes it, averaged over RUNS after a
    warm-up run. One model per process: beside another large session its elementwise ops profile slower."""
    import onnxruntime as ort

    from ..runtimes.ort_session import Session

    with tempfile.TemporaryDirectory(prefix="ce-profile-") as tmp:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        session = Session(str(path), options, Path(path).name)
        for _ in range(RUNS + 1):
            session.run(None, feeds)
        return _kernel_times(json.loads(Path(session.session.end_profiling()).read_text()))


def _kernel_times(events: list[dict]) -> dict[tuple[str, str], float]:
    first_runs: set[tuple[str, str]] = set()
    times: Counter = Counter()
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            key = (event["name"].removesuffix("_kernel_time"), event["args"]["op_name"])
            if key in first_runs:
                times[key] += event["dur"]
            else:  # the warm-up run, with its allocations
                first_runs.add(key)
    return {key: total / 1000.0 / RUNS for key, total in times.items()}


def time_profile(candidate: Path, reference: Path, sample: dict[str, np.ndarray], settings) -> dict:
    """The split of `candidate`'s time at the largest benchmark batch, the bound its float ops put on the
    speed-up over `reference`, and the slowest float nodes; each profiled alone in a fresh process."""
    from .bench import node_times_in_subprocess

    mine, theirs = node_times_in_subprocess([candidate, reference], sample, settings)
    return split(mine, theirs, max(settings.batches))


def split(mine: dict[tuple[str, str], float], theirs: dict[tuple[str, str], float], batch: int) -> dict:
    total, reference = sum(mine.values()), sum(theirs.values())
    integer = sum(ms for (_, op), ms in mine.items() if op in INTEGER_KERNELS)
    quantize = sum(ms for (_, op), ms in mine.items() if op in QUANTIZE_OPS)
    float_nodes = sorted(((ms, name, op) for (name, op), ms in mine.items()
                          if op not in INTEGER_KERNELS and op not in QUANTIZE_OPS), reverse=True)
    by_op: Counter = Counter()
    for ms, _, op in float_nodes:
        by_op[op] += ms
    outside = total - integer
    return {
        "batch": batch,
        "reference_ms": reference,
        "candidate_ms": total,
        "integer_ms": integer,
        "quantize_ms": quantize,
        "float_ms": total - integer - quantize,
        "ceiling": reference / outside if outside > 0 else None,
        "float_ops": {op: ms for op, ms in by_op.most_common(6)},
        "slowest_float_nodes": [{"node": name, "op": op, "ms": ms} for ms, name, op in float_nodes[:SLOWEST]],
    }


def markdown(profile: dict) -> list[str]:
    total = profile["candidate_ms"] or 1.0
    lines = [f"onnxruntime's per-node profile at batch {profile['batch']} (kernel time per run): FP32 "
             f"{profile['reference_ms']:.1f} ms, this artifact {profile['candidate_ms']:.1f} ms.", "",
             "| part | ms | share |", "|---|---|---|"]
    for label, key in (("integer kernels", "integer_ms"), ("quantize / dequantize", "quantize_ms"),
                       ("float ops", "float_ms")):
        lines.append(f"| {label} | {profile[key]:.1f} | {profile[key] / total:.0%} |")
    lines += ["", ceiling_text(profile), "", "| slowest float node | op | ms |", "|---|---|---|"]
    lines += [f"| `{node['node']}` | {node['op']} | {node['ms']:.2f} |" for node in profile["slowest_float_nodes"]]
    return lines


def ceiling_text(profile: dict) -> str:
    if profile["ceiling"] is None:
        return "Every kernel is an integer one."
    ops = ", ".join(f"{op} {ms:.1f} ms" for op, ms in profile["float_ops"].items())
    return (f"With its integer kernels at no cost the artifact could be at most {profile['ceiling']:.2f}x FP32: "
            f"the float ops ({ops}) and the quantize/dequantize passes stay.")
