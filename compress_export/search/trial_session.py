"""Sessions for the budget search's trial graphs, computing what the shipped artifact's runtime computes."""

from __future__ import annotations

import onnx


def trial_session(model: onnx.ModelProto, runtime: str):
    """An in-memory ONNX graph as `runtime` runs it: OpenVINO's CPU plugin for OpenVINO artifacts, else onnxruntime
    with the runtime's options. Either has get_outputs() and run(names, sample-major feeds)."""
    if runtime == "openvino":
        from ..runtimes.openvino import Session, read_model

        return Session(read_model(model), what="a trial graph")
    from ..graphs.onnx_io import session
    from ..runtimes.onnxruntime import session_options

    return session(model, session_options(runtime))
