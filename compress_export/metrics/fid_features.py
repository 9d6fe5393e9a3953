"""The feature model FID reads images through: an ONNX model the user names (`--fid-features`: its first input
takes the images, its first output, flattened, are the features), else the bundled digits classifier's
penultimate layer (512 features of 1x8x8 grey images in [0, 1])."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError

_state: dict = {"spec": None, "run": None}
DEFAULT = "the bundled digits classifier's penultimate layer"


def use_features(spec: str | None) -> None:
    """The feature model for this run (None: the default)."""
    if spec is not None and not Path(spec).is_file():
        raise UsageError(f"--fid-features {spec}: no such file (an ONNX model from images to features)")
    _state.update(spec=spec, run=None)


def feature_model_name() -> str:
    return _state["spec"] or DEFAULT


def features(images: np.ndarray) -> np.ndarray:
    if _state["run"] is None:
        _state["run"] = _onnx(_state["spec"]) if _state["spec"] else _digits()
    return np.asarray(_state["run"](np.ascontiguousarray(images, dtype=np.float32)), np.float64).reshape(
        len(images), -1)


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
