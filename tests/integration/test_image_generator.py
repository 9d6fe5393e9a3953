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
    assert {g["gate"] for g in reports["onnx-int8"]["gate_results"]} >= {"max_fid", "min_psnr", "min_ssim"}
    assert fp32["psnr_db"] > 60 and fp32["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert 20 < int8["psnr_db"] < fp32["psnr_db"] and 0.5 < int8["ssim"] < 1.0
    again = CliRunner().invoke(cli, ["validate", str(out / "onnx-int8"), "--no-bench", "--json", "-q"])
    assert json.loads(again.output)["metrics"]["candidate"]["fid"] == pytest.approx(int8["fid"], rel=1e-6)


def onnx_generator(folder):
    """latent[N, 4] -> MatMul -> Sigmoid -> image[N, 1, 16, 16]: a generator of a size no bundled model reads."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["latent", "w"], ["h"]), helper.make_node("Sigmoid", ["h"], ["s"]),
         helper.make_node("Reshape", ["s", "shape"], ["image"])], "generator",
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, 16, 16])],
        [numpy_helper.from_array(rng.normal(0, 1, (4, 256)).astype(np.float32), "w"),
         numpy_helper.from_array(np.array([-1, 1, 16, 16], np.int64), "shape")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / "generator.onnx")
    for split, count in (("calib", 32), ("val", 40)):
        np.savez(folder / f"{split}.npz", latent=rng.normal(size=(count, 4)).astype(np.float32))
    return folder / "generator.onnx"


def digits_only_features(path):
    """A feature model that reads 1x8x8 images only."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["images"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["features"])],
        "features", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 1, 8, 8])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 5])],
        [numpy_helper.from_array(np.ones((64, 5), np.float32), "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_generator_of_any_image_size_gets_fid_by_default_and_a_misfit_model_is_refused_before_calibration(
        tmp_path, monkeypatch):
    import compress_export.stages.ranges as ranges_stage

    model = onnx_generator(tmp_path)
    common = [str(model), "--task", "image-generation", "--to", "onnx,onnx-int8", "--calib-data",
              str(tmp_path / "calib.npz"), "--val-data", str(tmp_path / "val.npz"), "--no-bench", "-q"]
    result = CliRunner().invoke(cli, [*common, "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code in (0, 1), result.output
    int8 = next(t["report"] for t in json.loads(result.output)["targets"] if t["target"] == "onnx-int8")
    fid = int8["metrics"]["candidate"]
    assert fid["fid"] >= 0 and fid["fid_samples"] == 40 and "general features" in fid["fid_features"]

    def no_calibration(*args, **kwargs):
        raise AssertionError("calibrated before the feature model was checked")

    monkeypatch.setattr(ranges_stage, "onnx_ranges", no_calibration)
    misfit = CliRunner().invoke(cli, [*common, "--out", str(tmp_path / "misfit"), "--fid-features",
                                      str(digits_only_features(tmp_path / "features.onnx"))])
    assert misfit.exit_code == 2, misfit.output
    assert "cannot read the generator's images (1, 16, 16)" in misfit.output
    assert not (tmp_path / "misfit" / "onnx-int8").exists()


def test_a_candidate_with_nan_or_overflowed_images_is_infinitely_far_not_a_crash():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(20, 6))
    broken = features.copy()
    broken[3, 2] = np.nan
    assert frechet_distance(features, broken) == float("inf")
    assert frechet_distance(features, features * 1e300) == float("inf")
