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


def trial_suite(session, batches, metrics, sampler=None) -> tuple[dict, dict]:
    """(parity, metrics) of a trial session on (feeds, labels, reference outputs) batches; with an image generator's
    sampler, its images are made with the trial graph as the denoiser."""
    from ..metrics.suite import MetricSuite
    from ..validators.evaluate import sampled

    names = [output.name for output in session.get_outputs()]
    suite = MetricSuite(list(batches[0][2]), metrics)
    for feeds, labels, expected in batches:
        produced = sampled(sampler, lambda given: dict(zip(names, session.run(names, given), strict=True)), feeds)
        suite.update(expected, produced, labels)
    return suite.parity(), suite.metrics()
