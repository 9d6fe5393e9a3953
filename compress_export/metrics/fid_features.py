"""The feature model FID reads images through: an ONNX model the user names (`--fid-features`: its first input
takes the images, its first output, flattened, are the features), else the bundled digits classifier's
penultimate layer (512 features of 1x8x8 grey images in [0, 1])."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import UsageError

DEFAULT = "the bundled digits classifier's penultimate layer"


def check_features(spec: str | None) -> None:
    if spec is not None and not Path(spec).is_file():
        raise UsageError(f"--fid-features {spec}: no such file (an ONNX model from images to features)")


def feature_model_name(spec: str | None) -> str:
    return spec or DEFAULT


def features(images: np.ndarray, spec: str | None) -> np.ndarray:
    run = _feature_function(spec)
    return np.asarray(run(np.ascontiguousarray(images, dtype=np.float32)), np.float64).reshape(len(images), -1)


@functools.cache  # one session (or digits model) per feature model and process, however often FID is computed
def _feature_function(spec: str | None):
    return _onnx(spec) if spec else _digits()


def _onnx(spec: str):
    import onnxruntime as ort

    session = ort.InferenceSession(spec, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: images})[0]


def _digits():
    from ..errors import require

    torch = require("torch", "torch")
    from ..demo.model import digits_cnn

    model = digits_cnn()

    def run(images):
        if images.shape[1:] != (1, 8, 8):
            raise UsageError(f"FID's default features read 1x8x8 images, not {tuple(images.shape[1:])}: name a "
                             "feature model with --fid-features MODEL.onnx")
        with torch.no_grad():
            return torch.flatten(model.features(torch.from_numpy(images)), 1).numpy()

    return run
