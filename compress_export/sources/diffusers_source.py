"""A diffusers model folder (config.json with `_class_name`, diffusion_pytorch_model.safetensors), or a pipeline
folder (model_index.json) whose denoiser (unet/ or transformer/) is taken: the model class is diffusers' own, built
from the config offline; the inputs are named by the data file (sample, timestep, encoder_hidden_states, ...)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import UsageError, require
from ..util.hashing import sha256_files

DENOISERS = ("unet", "transformer")
WEIGHTS = "diffusion_pytorch_model"


def diffusers_folder(path: Path) -> Path | None:
    """The folder holding the denoiser's config and weights, or None when `path` is no diffusers folder."""
    if not path.is_dir():
        return None
    if (path / "model_index.json").is_file():
        for name in DENOISERS:
            if (path / name / "config.json").is_file():
                return path / name
        raise UsageError(f"{path}: a diffusers pipeline folder without a {' or '.join(DENOISERS)}/ denoiser")
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return path if isinstance(config, dict) and "_diffusers_version" in config and config.get("_class_name") else None


def load_diffusers(folder: Path, specs, trust_pickle: bool):
    torch = require("torch", "torch")
    diffusers = require("diffusers", "diffusers")
    from .hf_source import read_config
    from .torch_source import TorchModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    config = read_config(folder)
    model_class = getattr(diffusers, str(config["_class_name"]), None)
    if not (isinstance(model_class, type) and issubclass(model_class, diffusers.ModelMixin)):
        raise UsageError(f"{folder}: {config['_class_name']!r} is not a diffusers model class")
    safe = sorted(folder.glob(f"{WEIGHTS}*.safetensors"))
    pickled = sorted(folder.glob(f"{WEIGHTS}*.bin"))
    if not safe and not pickled:
        raise UsageError(f"{folder}: no {WEIGHTS}.safetensors beside its config.json")
    if not safe and not trust_pickle:
        raise UsageError(f"{folder}: its weights are pickled ({pickled[0].name}); loading them runs code from the "
                         "file. Pass --trust-pickle if you trust its author, or convert them to safetensors")
    if not specs:
        raise UsageError(f"{folder}: name the denoiser's inputs with --calib-data (keys such as sample, timestep)")
    try:
        model = model_class.from_pretrained(str(folder), use_safetensors=bool(safe), local_files_only=True)
    except Exception as exc:
        raise UsageError(f"{folder}: diffusers cannot load it ({str(exc).splitlines()[0][:200]})") from None
    names = [spec.name for spec in specs]

    class Denoiser(torch.nn.Module):
        """The inputs by the data file's names, in its order; the prediction as one tensor."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(**dict(zip(names, tensors, strict=True)), return_dict=False)[0]

    return TorchModel(Denoiser().eval(), str(folder), sha256_files(folder / "config.json", *(safe or pickled)),
                      tuple(specs))
