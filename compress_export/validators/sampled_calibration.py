"""Calibration data for a denoiser inside a sampler: what the FP32 denoiser is fed at every call of the sampler on
the calibration samples (late calls see nearly clean samples and small noise levels that the starting inputs
alone never show), kept to a bounded count by taking each call's samples in turn."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from ..data.calibration_data import CalibrationData, batch_rows, load_npz_data

MAX_SAMPLES = 512  # captured denoiser inputs kept: more only lengthens calibration


def sampled_calibration(model, calib: CalibrationData, sampler, work: Path, progress: bool) -> CalibrationData:
    from dataclasses import replace

    from tqdm import tqdm

    captured: list[dict] = []
    with model.reference_runner() as runner, tqdm(total=len(calib), unit="sample", desc="sampler calibration",
                                                  disable=not progress, file=sys.stderr, leave=False) as bar:
        for feeds in calib.batches():
            sampler.run(runner.infer, feeds, capture=lambda given: captured.append(dict(given)))
            bar.update(batch_rows(feeds))
    total = sum(batch_rows(feeds) for feeds in captured)
    stride = max(1, math.ceil(total / max(MAX_SAMPLES, len(calib))))
    kept: dict[str, list] = {}
    for call, feeds in enumerate(captured):
        rows = [row for row in range(batch_rows(feeds)) if (row + call) % stride == 0]
        for name, value in feeds.items():
            kept.setdefault(name, []).append(np.asarray(value)[rows] if np.ndim(value) and len(value) ==
                                             batch_rows(feeds) else np.repeat(np.asarray(value)[None], len(rows), 0))
    path = work / "sampler" / "calibration.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{name: np.concatenate(parts) for name, parts in kept.items()})
    data = load_npz_data(path, calib.specs, calib.batch_size)
    return replace(data, whole_batches=calib.whole_batches, source=f"{calib.source}, fed through the sampler")
