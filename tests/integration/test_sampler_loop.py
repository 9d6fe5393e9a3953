"""A 10-step DDPM trained in the test, exported through --sampler ddim:steps=10: the quality metrics are those of the
final images, the report carries the error after every call, and both agree with an independent DDIM loop run here
on the shipped INT8 file and the FP32 model (a sampler or denoiser wired wrongly, say the INT8 model stepped from
the FP32 model's samples, reads different numbers)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from compress_export.cli.main import cli
from compress_export.metrics.psnr import image_psnr

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def ddpm(tmp_path_factory):
    from safetensors.torch import save_file

    from compress_export.demo.data import digits_split
    from tests.tiny_ddpm import train

    folder = tmp_path_factory.mktemp("ddpm")
    save_file(train(digits_split()["train"][0]), str(folder / "denoiser.safetensors"))
    rng = np.random.default_rng(0)
    for split, count in (("calib", 64), ("val", 40)):
        np.savez(folder / f"{split}.npz", sample=rng.standard_normal((count, 1, 8, 8)).astype(np.float32),
                 timestep=np.full(count, 999, np.float32))
    return folder


def fp32_model(folder):
    from safetensors.torch import load_file

    from tests.tiny_ddpm import denoiser

    model = denoiser()
    model.load_state_dict(load_file(str(folder / "denoiser.safetensors")))
    return lambda x, t: model(torch.from_numpy(x), torch.from_numpy(t)).detach().numpy()


def test_ddim_run_measures_the_final_images_and_every_step(ddpm, tmp_path):
    from tests.tiny_ddpm import ddim

    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "tests/tiny_ddpm.py:denoiser", "--weights", str(ddpm / "denoiser.safetensors"), "--sampler", "ddim:steps=10",
        "--to", "onnx,onnx-int8", "--calib-data", str(ddpm / "calib.npz"), "--val-data", str(ddpm / "val.npz"),
        "--out", str(out), "--no-bench", "-q", "--json"])
    assert result.exit_code in (0, 1), result.output
    reports = {t["target"]: t["report"] for t in json.loads(result.output)["targets"]}
    steps = reports["onnx-int8"]["metrics"]["candidate"]["sampler_steps"]
    assert len(steps["psnr_db"]) == 10 and steps["images"] == 40
    fp32_steps = reports["onnx"]["metrics"]["candidate"]["sampler_steps"]
    assert min(fp32_steps["cosine"]) > 0.99999

    # The same loop, written here: FP32 model and the shipped INT8 file, each from its own samples.
    val = np.load(ddpm / "val.npz")
    manifest = json.loads((out / "onnx-int8" / "manifest.json").read_text())
    assert manifest["task"] == "image-generation" and manifest["sampler"] == "ddim:steps=10"
    session = ort.InferenceSession(str(out / "onnx-int8" / manifest["artifact"]["path"]))
    names = [i.name for i in session.get_inputs()]
    int8_images, int8_seen = ddim(lambda x, t: session.run(None, dict(zip(names, (x, t), strict=True)))[0],
                                  val["sample"])
    fp32_images, fp32_seen = ddim(fp32_model(ddpm), val["sample"])
    reference = np.load(out / "onnx-int8" / "reference" / "outputs.npz")
    assert np.allclose(reference["output"], fp32_images, atol=1e-4)  # the reference is the FP32 sampler's images
    assert reports["onnx-int8"]["metrics"]["candidate"]["psnr_db"] == pytest.approx(
        image_psnr(fp32_images, int8_images).mean(), abs=0.05)
    expected_curve = [image_psnr(a, b).mean() for a, b in zip(fp32_seen[1:] + [fp32_images],
                                                                int8_seen[1:] + [int8_images], strict=True)]
    assert steps["psnr_db"] == pytest.approx(expected_curve, abs=0.05)
    assert steps["psnr_db"][0] > steps["psnr_db"][-1]  # the error grows along the loop
    assert "fed through the sampler" in manifest["data"]["calibration"]["source"]
    assert "## Sampler" in (out / "onnx-int8" / "report.md").read_text()
    assert (out / "onnx-int8" / "sampler_steps.png").is_file()

    again = json.loads(CliRunner().invoke(cli, ["validate", str(out / "onnx-int8"), "--bench-batch", "1",
                                                "--bench-runs", "3", "--json", "-q"]).output)
    assert again["metrics"]["candidate"]["sampler_steps"]["psnr_db"] == pytest.approx(steps["psnr_db"], abs=1e-6)
    assert again["bench"]["per_image_loop"]["candidate"]["1"]["p50_ms"] > 0  # the whole loop, timed where it runs



def test_the_whole_sampler_loop_is_timed_per_image_beside_fp32(tmp_path, monkeypatch):
    import onnx
    from onnx import TensorProto, helper

    from compress_export.samplers import get_sampler
    from compress_export.validators.bench import BenchSettings, sampler_loop_in_subprocess

    graph = helper.make_graph(
        [helper.make_node("Mul", ["sample", "half"], ["output"])], "halve",
        [helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["b", 1, 8, 8]),
         helper.make_tensor_value_info("timestep", TensorProto.FLOAT, ["b"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["b", 1, 8, 8])],
        [helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])])
    model = tmp_path / "halve.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    (tmp_path / "three_calls.py").write_text(
        "import os\nimport numpy as np\n\n\ndef sample(denoise, inputs, rng):\n    x = inputs['sample']\n"
        "    for t in (999, 500, 0):\n        x = denoise({'sample': x, 'timestep': np.full(len(x), t, np.float32)})"
        "['output']\n        with open(os.environ['CALLS_LOG'], 'a') as log:\n            log.write('call\\n')\n"
        "    return x\n")
    monkeypatch.setenv("CALLS_LOG", str(tmp_path / "calls.log"))
    monkeypatch.chdir(tmp_path / "..")  # the file's setting resolves to its own path from anywhere
    sampler = get_sampler(f"{tmp_path.name}/three_calls.py:sample")
    sample = {"sample": np.ones((2, 1, 8, 8), np.float32), "timestep": np.zeros(2, np.float32)}
    settings = BenchSettings(batches=(1, 2), warmup=1, runs=4, seconds=0.01, min_runs=4)
    reference, candidate = sampler_loop_in_subprocess([("onnxruntime", model)] * 2, sample, settings, sampler)
    assert set(reference) == set(candidate) == {"1"}  # at the smallest batch
    assert reference["1"]["runs"] == candidate["1"]["runs"] == 4
    calls = (tmp_path / "calls.log").read_text().split()
    assert len(calls) == 2 * (1 + 4) * 3  # two models, a warm-up and four timed loops each, three calls a loop
