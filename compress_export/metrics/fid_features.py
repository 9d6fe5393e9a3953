"""The feature model FID reads images through: an ONNX model the user names (`--fid-features`: its first input
takes the images, its first output, flattened, are the features); else, for 1x8x8 grey images, the bundled digits
classifier's penultimate layer (512 learned features of that domain); else general features (random_features.py)
that read images of any size and of 1 or 3 channels, offline. A named model that cannot read the generator's images
is refused before calibration (`check_reads`), not after it."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import UsageError

DIGITS = "the bundled digits classifier's penultimate layer"
DIGITS_SHAPE = (1, 8, 8)


def check_features(spec: str | None) -> None:
    if spec is not None and not Path(spec).is_file():
        raise UsageError(f"--fid-features {spec}: no such file (an ONNX model from images to features)")


def feature_model_name(spec: str | None, image_shape: tuple = ()) -> str:
    if spec:
        return spec
    if tuple(image_shape) == DIGITS_SHAPE:
        return DIGITS
    from .random_features import DESCRIPTION

    return DESCRIPTION


def features(images: np.ndarray, spec: str | None) -> np.ndarray:
    run = _feature_function(spec, None if spec else tuple(images.shape[1:]) == DIGITS_SHAPE)
    return np.asarray(run(np.ascontiguousarray(images, dtype=np.float32)), np.float64).reshape(len(images), -1)


def check_reads(images: np.ndarray, spec: str | None) -> None:
    """One line (exit 2) when the feature model cannot read these images: checked on the FP32 model's first images,
    before calibration and export."""
    from ..errors import CompressExportError

    try:
        features(images[:2], spec)
    except CompressExportError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UsageError(f"--fid-features {spec} cannot read the generator's images "
                         f"{tuple(images.shape[1:])}: {first}") from None


@functools.cache  # one session (or digits model) per feature model and process, however often FID is computed
def _feature_function(spec: str | None, digits: bool | None):
    if spec:
        return _onnx(spec)
    if digits:
        return _digits()
    from .random_features import random_features

    return random_features


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
        with torch.no_grad():
            return torch.flatten(model.features(torch.from_numpy(images)), 1).numpy()

    return run
