"""Timings a user can trust: sessions timed in turns do not spin, the FP32 model is timed against a copy of
itself and a noisy machine is called out, and each benchmark names the CPU it ran on."""

import sys

import pytest

from compress_export.runtimes.machine import INT8_FEATURES, cpu_info, platform_info
from compress_export.validators.speedup import noise_warnings


def test_sessions_do_not_spin_between_interleaved_runs():
    from compress_export.runtimes.onnxruntime import session_options

    for runtime in ("onnxruntime", "onnxruntime-exact"):
        assert session_options(runtime).get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_noisy_a_a_check_warns_and_a_quiet_one_does_not():
    warnings = noise_warnings({"1": 1.08, "32": 0.99})
    assert len(warnings) == 1 and "batch 1" in warnings[0] and "1.08x" in warnings[0]
    assert noise_warnings({"1": 1.04, "32": 0.96}) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo")
def test_the_machine_is_named_with_its_int8_features():
    info = cpu_info()
    assert info["model"]
    assert info["features"].startswith("none of") or all(f in INT8_FEATURES for f in info["features"].split(", "))
    facts = platform_info()
    assert facts["int8_features"] == info["features"] and facts["onnxruntime"][0].isdigit()
