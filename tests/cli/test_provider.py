"""`--provider` runs the ONNX artifacts on an onnxruntime execution provider, refused with exit 3 when this
onnxruntime build lacks it; the report names the provider it ran on."""

import json

import onnxruntime as ort
import pytest
from click.testing import CliRunner

from compress_export.cli.main import cli
from compress_export.job import PipelineConfig
from compress_export.pipeline import run
from compress_export.runtimes.providers import PROVIDER_ENV, artifact_providers, provider_name


@pytest.fixture
def bundle(tmp_path, digits_onnx, digits_data, monkeypatch):
    monkeypatch.setenv(PROVIDER_ENV, "")  # recorded, so whatever `--provider` sets is undone after the test
    monkeypatch.delenv(PROVIDER_ENV)
    calib, val = digits_data
    run(PipelineConfig(model=str(digits_onnx), targets="onnx", out=tmp_path / "out", calib_data=str(calib),
                       val_data=str(val), bench=None, progress=False))
    return tmp_path / "out" / "onnx"


def test_a_provider_this_onnxruntime_lacks_is_exit_3(bundle):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    result = CliRunner().invoke(cli, ["validate", str(bundle), "--provider", "cuda", "--no-bench"])
    assert result.exit_code == 3 and "CUDAExecutionProvider is not in this onnxruntime build" in result.output


def test_the_chosen_provider_runs_the_artifact_and_is_reported(bundle, monkeypatch):
    result = CliRunner().invoke(cli, ["validate", str(bundle), "--provider", "cpu", "--no-bench", "--json", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["machine"]["onnxruntime_provider"] == "CPUExecutionProvider"
    assert artifact_providers() == ["CPUExecutionProvider"]
    assert provider_name("OpenVINO") == "OpenVINOExecutionProvider"
