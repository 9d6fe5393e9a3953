"""A bundle records what its artifact computes where it was exported; `validate` elsewhere flags outputs that
move beyond float noise (an INT8 kernel that differs between CPUs) and stays quiet when they do not."""

import numpy as np

from compress_export.validators.cross_machine import ARTIFACT_OUTPUTS, differences, record, warnings


class Doubling:
    """A stand-in runner: y = 2x (+ an offset, to play another machine)."""

    def __init__(self, offset=0.0):
        self.offset = offset

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def infer(self, feeds):
        return {"y": feeds["x"] * 2 + self.offset}


def bundle(tmp_path):
    (tmp_path / "reference").mkdir()
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    np.savez(tmp_path / "reference" / "inputs.npz", x=x)
    np.savez(tmp_path / "reference" / "outputs.npz", y=x * 2)
    record(tmp_path, Doubling)
    return {"x": x}


def test_the_same_arithmetic_elsewhere_is_not_flagged(tmp_path):
    inputs = bundle(tmp_path)
    assert (tmp_path / "reference" / ARTIFACT_OUTPUTS).is_file()
    result = differences(tmp_path, Doubling, inputs)
    assert result["y"]["max_abs"] == 0.0 and not result["y"]["differs"]
    assert warnings(result, {"processor": "x"}) == []


def test_a_kernel_that_computes_otherwise_is_flagged_with_the_exporting_machine(tmp_path):
    inputs = bundle(tmp_path)
    result = differences(tmp_path, lambda: Doubling(offset=0.05), inputs)
    assert result["y"]["differs"] and result["y"]["max_abs"] > 0.04
    (text,) = warnings(result, {"processor": "Xeon with AMX", "int8_features": "avx2, avx512_vnni, amx_int8"})
    assert "Xeon with AMX" in text and "avx512_vnni" in text and "y up to" in text


def test_bundles_without_a_record_are_left_alone(tmp_path):
    (tmp_path / "reference").mkdir()
    assert differences(tmp_path, Doubling, {"x": np.zeros((2, 4), np.float32)}) is None
