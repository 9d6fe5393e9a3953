"""FID for image generators: the Fréchet distance against a scipy reference, and a generator trained in the test
exported with --task image-generation: FID of its INT8 images against FP32's on the same latents, gated."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from compress_export.cli.main import cli
from compress_export.metrics.fid import frechet_distance

torch = pytest.importorskip("torch")


def test_frechet_distance_matches_the_scipy_formula():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    b = rng.normal(loc=0.3, scale=1.5, size=(300, 6)) @ rng.normal(size=(6, 6))
    mu, cov_a, cov_b = a.mean(0) - b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = mu @ mu + np.trace(cov_a + cov_b - 2 * scipy_linalg.sqrtm(cov_a @ cov_b).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, a + 1.0) == pytest.approx(6.0, rel=1e-9)  # a shifted mean, the same spread


@pytest.fixture(scope="module")
def trained_generator(tmp_path_factory):
    from safetensors.torch import save_file

    from compress_export.demo.data import digits_split
    from tests.tiny_generator import train

    folder = tmp_path_factory.mktemp("generator")
    images = digits_split()["train"][0][:400]
    state, latents = train(images)
    save_file(state, str(folder / "generator.safetensors"))
    np.savez(folder / "latents.npz", latent=latents.astype(np.float32))
    rng = np.random.default_rng(1)
    np.savez(folder / "held_out.npz", latent=rng.normal(size=(200, latents.shape[1])).astype(np.float32))
    return folder


def test_int8_generator_is_judged_by_fid_against_fp32_images(trained_generator, tmp_path):
    folder = trained_generator
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "tests/tiny_generator.py:generator", "--weights", str(folder / "generator.safetensors"),
        "--task", "image-generation", "--to", "onnx,onnx-int8", "--calib-data", str(folder / "latents.npz"),
        "--val-data", str(folder / "held_out.npz"), "--out", str(out), "--no-bench", "-q", "--json"])
    assert result.exit_code in (0, 1), result.output
    reports = {t["target"]: t["report"] for t in json.loads(result.output)["targets"]}
    fp32, int8 = reports["onnx"]["metrics"]["candidate"], reports["onnx-int8"]["metrics"]["candidate"]
    assert fp32["fid"] == pytest.approx(0.0, abs=1e-6) and fp32["fid_samples"] == 200
    assert 0 < int8["fid"] < 1.0  # INT8 images read like FP32's through the digits features
    assert "digits classifier" in int8["fid_features"]
    assert {g["gate"] for g in reports["onnx-int8"]["gate_results"]} >= {"max_fid"}
    again = CliRunner().invoke(cli, ["validate", str(out / "onnx-int8"), "--no-bench", "--json", "-q"])
    assert json.loads(again.output)["metrics"]["candidate"]["fid"] == pytest.approx(int8["fid"], rel=1e-6)
