"""Sessions for the budget search's trial graphs, computing what the shipped artifact's runtime computes."""

from __future__ import annotations

import onnx

MAX_WORKERS = 4  # trials at once: each holds a session of the model


def trial_session(model: onnx.ModelProto, runtime: str, threads: int | None = None):
    """An in-memory ONNX graph as `runtime` runs it: OpenVINO's CPU plugin for OpenVINO artifacts, else onnxruntime
    with the runtime's options. Either has get_outputs() and run(names, sample-major feeds)."""
    if runtime == "openvino":
        from ..runtimes.openvino import Session, read_model

        return Session(read_model(model), threads, what="a trial graph")
    from ..graphs.onnx_io import session
    from ..runtimes.onnxruntime import session_options

    return session(model, session_options(runtime, threads))


def trial_workers() -> int:
    """How many trials run at once, one core each: a trial on 16 samples keeps two threads of one session only
    partly busy (PP-OCRv4 det: 0.70 s a trial on two threads, 1.09 s on one, so two at once do 1.3x the trials)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS))
