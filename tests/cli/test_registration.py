"""A compression method and a calibrator, each added by one module of its own (tests/registered/), reach the command
line and the run through the registries alone: their options and names appear, they run, and the bundle shows it."""

from __future__ import annotations

import importlib
import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from compress_export.calibration.methods import CALIBRATORS
from compress_export.cli import cli
from compress_export.compression import METHODS
from tests.conftest import DIGITS_FACTORY


@pytest.fixture
def registered():
    """Import (again) each module, which registers its member; take the members out afterwards."""
    for name in ("scale_weights", "half_range"):
        importlib.reload(importlib.import_module(f"tests.registered.{name}"))
    yield
    METHODS.pop("scale-weights")
    CALIBRATORS.pop("half")


def test_a_registered_method_brings_its_option_and_runs_in_the_pipeline(registered, tmp_path, digits_data):
    calib, val = digits_data
    assert "--scale-weights FACTOR" in CliRunner().invoke(cli, ["export", "--help"]).output
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [DIGITS_FACTORY, "--to", "onnx", "--calib-data", str(calib), "--val-data",
                                      str(val), "--out", str(out), "--no-bench", "-q", "--scale-weights", "0.5",
                                      "--min-cosine", "-1"])
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "onnx" / "report.json").read_text())
    assert report["scale-weights"]["factor"] == 0.5
    assert "Every weight multiplied by 0.5." in (out / "onnx" / "report.md").read_text()
    original = CliRunner().invoke(cli, [DIGITS_FACTORY, "--to", "onnx", "--calib-data", str(calib), "--val-data",
                                        str(val), "--out", str(tmp_path / "plain"), "--no-bench", "-q"])
    assert original.exit_code == 0, original.output

    def weights(folder):
        model = onnx.load(str(folder / "onnx" / "model.onnx"))
        return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer
                if init.data_type == onnx.TensorProto.FLOAT}

    scaled, plain = weights(out), weights(tmp_path / "plain")
    assert scaled.keys() == plain.keys()
    for name, value in plain.items():
        np.testing.assert_allclose(scaled[name], 0.5 * value, rtol=1e-6, err_msg=name)


def test_a_registered_calibrator_is_offered_and_gives_its_own_ranges(registered, tmp_path, digits_onnx, digits_data):
    calib, _ = digits_data
    tables = {}
    for method in ("half", "minmax"):
        path = tmp_path / f"{method}.json"
        result = CliRunner().invoke(cli, ["calibrate", str(digits_onnx), "--calib-data", str(calib), "--calibrator",
                                          method, "--out", str(path), "-q"])
        assert result.exit_code == 0, result.output
        tables[method] = json.loads(path.read_text())
    assert tables["half"]["method"] == "half"
    half, full = tables["half"]["ranges"], tables["minmax"]["ranges"]
    assert half.keys() == full.keys() and half
    for name, (lo, hi) in full.items():
        assert half[name] == pytest.approx([lo / 2, hi / 2]), name


def test_an_unregistered_calibrator_is_a_usage_error(tmp_path, digits_onnx, digits_data):
    result = CliRunner().invoke(cli, ["calibrate", str(digits_onnx), "--calib-data", str(digits_data[0]),
                                      "--calibrator", "half", "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2 and "'half' is not one of" in result.output
