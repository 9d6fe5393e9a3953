"""The time profile's split and bound: integer kernels, quantize/dequantize and float ops add up to the artifact's
time, and the float ops bound the speed-up."""

import numpy as np

from compress_export.validators import time_profile as profiling

CANDIDATE = {("conv1", "QLinearConv"): 10.0, ("q", "QuantizeLinear"): 2.0, ("dq", "DequantizeLinear"): 3.0,
             ("mul", "Mul"): 4.0, ("add", "Add"): 1.0}
REFERENCE = {("conv1", "Conv"): 36.0, ("mul", "Mul"): 4.0}


def test_float_ops_bound_the_speed_up_and_are_named_slowest_first():
    profile = profiling.split(CANDIDATE, REFERENCE, batch=4)
    assert profile["integer_ms"] == 10.0 and profile["quantize_ms"] == 5.0 and profile["float_ms"] == 5.0
    assert profile["ceiling"] == 40.0 / 10.0  # FP32 40 ms; 10 ms stay outside the integer kernels
    assert [node["node"] for node in profile["slowest_float_nodes"]] == ["mul", "add"]
    assert "at most 4.00x FP32" in "\n".join(profiling.markdown(profile))


def test_node_times_come_from_onnxruntime_profile_in_a_fresh_process(digits_onnx, digits_data):
    from compress_export.validators.bench import BenchSettings, node_times_in_subprocess

    with np.load(digits_data[1]) as npz:
        sample = {"image": npz["image"][:4]}
    first, second = node_times_in_subprocess([digits_onnx, digits_onnx], sample, BenchSettings(batches=(1, 4)))
    assert set(first) == set(second) and {"Conv", "Gemm"} & {op for _, op in first}
    assert all(ms > 0 for ms in first.values())


def test_a_profile_that_cannot_be_taken_leaves_a_warning_not_a_failure(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from compress_export.errors import ExportError
    from compress_export.stages import target as target_stage

    def refuse(*args):
        raise ExportError("benchmark of model.onnx failed: no profile")

    monkeypatch.setattr(profiling, "time_profile", refuse)
    monkeypatch.setattr(target_stage, "baseline", lambda job, target: ("onnxruntime", tmp_path / "fp32.onnx"))
    report = SimpleNamespace(context={}, sections=[], warnings=[])
    target_stage._time_profile(None, None, report, SimpleNamespace(sample={}, settings=None), tmp_path / "m.onnx")
    assert report.warnings == ["no time profile: benchmark of model.onnx failed: no profile"]
    assert "time_profile" not in report.context and report.sections == []
