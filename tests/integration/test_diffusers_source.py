"""diffusers denoisers as users keep them: a factory building UNet2DModel from its config, a model folder
(config.json + diffusion_pytorch_model.safetensors) and a pipeline folder (model_index.json + unet/), each through a
sampler; pickled weights only with --trust-pickle."""

import json
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from compress_export.cli.main import cli

pytest.importorskip("torch")
pytest.importorskip("diffusers")

UNET = ("UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16), "
        "down_block_types=('DownBlock2D', 'AttnDownBlock2D'), up_block_types=('AttnUpBlock2D', 'UpBlock2D'), "
        "norm_num_groups=4)")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("denoiser_data")
    rng = np.random.default_rng(0)
    for split in ("calib", "val"):
        np.savez(folder / f"{split}.npz", sample=rng.standard_normal((8, 1, 8, 8)).astype(np.float32),
                 timestep=np.full(8, 999, np.int64))
    return folder


def export(model: str, data, out, *extra):
    return CliRunner().invoke(cli, [model, "--sampler", "ddim:steps=3", "--to", "onnx", "--calib-data",
                                    str(data / "calib.npz"), "--val-data", str(data / "val.npz"), "--out", str(out),
                                    "--no-bench", "-q", "--json", *extra])


def test_a_unet_factory_whose_output_shares_its_inputs_name(data, tmp_path):
    """UNet2DModel returns `sample`, the name of its own input: the output is renamed, the graph stays valid."""
    factory = tmp_path / "unet_factory.py"
    factory.write_text(f"from diffusers import UNet2DModel\n\n\ndef unet():\n    return {UNET}.eval()\n")
    result = export(f"{factory}:unet", data, tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["targets"][0]["report"]
    assert report["metrics"]["candidate"]["sampler_steps"]["psnr_db"] == pytest.approx([100.0] * 3, abs=1e-6)
    assert "sample_out" in report["parity"]


def test_model_and_pipeline_folders_load_offline_and_pickles_need_trust(data, tmp_path):
    from diffusers import UNet2DModel  # noqa: F401 (the UNET expression names it)

    model = eval(UNET)  # noqa: S307 (a constant expression of this test)
    model.save_pretrained(tmp_path / "pipe" / "unet")
    (tmp_path / "pipe" / "model_index.json").write_text(json.dumps(
        {"_class_name": "DDPMPipeline", "_diffusers_version": "0.42.1", "unet": ["diffusers", "UNet2DModel"]}))
    for folder in (tmp_path / "pipe" / "unet", tmp_path / "pipe"):
        result = export(str(folder), data, tmp_path / f"out_{folder.name}")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["targets"][0]["report"]["metrics"]["candidate"]["sampler_steps"]

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tmp_path / "pipe" / "unet" / "config.json").read_text())
    trace = tmp_path / "ran"
    payload = type("Payload", (), {"__reduce__": lambda self: (open, (str(trace), "w"))})()
    (pickled / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(payload))
    result = export(str(pickled), data, tmp_path / "out_pickled")
    assert result.exit_code == 2 and "--trust-pickle" in result.output
    assert not trace.exists()
