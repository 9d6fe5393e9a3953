"""A network's reference data in its bundle: held-out inputs (with labels where there are any) and the original
model's outputs, so that `validate` re-checks the artifact without the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.calibration_data import LABEL_KEY, batch_rows

FID_FEATURES_FILE = "fid_features.onnx"  # reference/: the feature model FID read the images through


REFERENCE_MAX_SAMPLES = 256


REFERENCE_MAX_BYTES = 8 << 20


def write_reference(folder: Path, validation) -> None:
    """Held-out inputs with the original model's outputs, for `validate` without the model.
    Only batches shaped like the first are kept, so that they stack into one array per name."""
    inputs: dict[str, list] = {}
    outputs: dict[str, list] = {}
    first_shapes = {name: value.shape[1:] for name, value in validation.batches[0][0].items()}
    taken, size = 0, 0
    for feeds, labels, expected in validation.batches:
        if {name: value.shape[1:] for name, value in feeds.items()} != first_shapes:
            continue
        rows = min(batch_rows(feeds), REFERENCE_MAX_SAMPLES - taken)
        if rows <= 0 or size >= REFERENCE_MAX_BYTES:
            break
        for name, value in feeds.items():
            inputs.setdefault(name, []).append(value[:rows])
        if labels is not None:
            inputs.setdefault(LABEL_KEY, []).append(labels[:rows])
        for name, value in expected.items():
            outputs.setdefault(name, []).append(value[:rows])
            size += value[:rows].nbytes
        taken += rows
    (folder / "reference").mkdir()
    np.savez(folder / "reference" / "inputs.npz", **{k: np.concatenate(v) for k, v in inputs.items()})
    np.savez(folder / "reference" / "outputs.npz", **{k: np.concatenate(v) for k, v in outputs.items()})


def write_sampler(folder: Path, sampler) -> str | None:
    """The sampler setting the manifest records; a user's sampler file is copied beside the reference data."""
    if sampler is None:
        return None
    path = getattr(sampler, "path", None)
    if path is None:
        return sampler.text
    import shutil

    shutil.copy2(path, folder / "reference" / Path(path).name)
    return f"{Path(path).name}:{sampler.text.partition(':')[2]}"
