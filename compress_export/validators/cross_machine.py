"""The artifact's own outputs on the reference inputs, recorded where it was exported, and compared where it
is validated: INT8 kernels differ between CPUs (with and without VNNI, onnxruntime issues #14642, #6004), so
a bundle can pass on one machine and compute something else on another. A difference beyond float noise
(1e-3 of the output's scale) is flagged."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ARTIFACT_OUTPUTS = "artifact_outputs.npz"
TOLERANCE = 1e-3  # of the largest recorded magnitude: float reordering stays far below, kernel changes above


def artifact_outputs(runner_factory, inputs: dict[str, np.ndarray], names: list[str], batch: int = 16) -> dict:
    from ..runtimes.base import by_reference_names

    count = len(next(iter(inputs.values())))
    parts: dict[str, list] = {}
    with runner_factory() as runner:
        for start in range(0, count, batch):
            produced = by_reference_names(runner.infer({k: v[start:start + batch] for k, v in inputs.items()}), names)
            for name in names:
                parts.setdefault(name, []).append(np.asarray(produced[name]))
    return {name: np.concatenate(values) for name, values in parts.items()}


def batch_for(specs) -> int:
    """Batches the artifact accepts: its fixed batch size where its inputs fix one."""
    from ..data.layout import fixed_batch

    return fixed_batch(specs) or 16


def record(folder: Path, runner_factory, specs=()) -> None:
    """reference/artifact_outputs.npz: what the artifact computes here on reference/inputs.npz."""
    from ..data.calibration_data import LABEL_KEY
    from ..samplers import TRAJECTORY

    with np.load(folder / "reference" / "inputs.npz") as npz:
        inputs = {key: npz[key] for key in npz.files if key != LABEL_KEY}
    with np.load(folder / "reference" / "outputs.npz") as npz:
        names = [name for name in npz.files if name != TRAJECTORY]  # one call of the model, not its sampler
    np.savez(folder / "reference" / ARTIFACT_OUTPUTS,
             **artifact_outputs(runner_factory, inputs, names, batch_for(specs)))


def differences(folder: Path, runner_factory, inputs: dict[str, np.ndarray], specs=()) -> dict | None:
    """Per output: max abs difference between this machine's artifact outputs and the recorded ones, its
    ratio to the recorded scale, and whether that is beyond float noise. None for bundles without a record."""
    path = folder / "reference" / ARTIFACT_OUTPUTS
    if not path.is_file():
        return None
    with np.load(path) as npz:
        recorded = {key: npz[key] for key in npz.files}
    here = artifact_outputs(runner_factory, inputs, list(recorded), batch_for(specs))
    result = {}
    for name, before in recorded.items():
        diff = float(np.max(np.abs(here[name].astype(np.float64) - before))) if before.size else 0.0
        scale = float(np.max(np.abs(before))) if before.size else 0.0
        relative = diff / scale if scale else diff
        result[name] = {"max_abs": diff, "relative": relative, "differs": relative > TOLERANCE}
    return result


def warnings(result: dict | None, exported_on: dict) -> list[str]:
    if not result:
        return []
    differing = [name for name, stats in result.items() if stats["differs"]]
    if not differing:
        return []
    where = exported_on.get("processor", "the exporting machine")
    features = exported_on.get("int8_features", "unknown")
    detail = ", ".join(f"{name} up to {result[name]['relative']:.1e} of its scale" for name in differing)
    return [f"this machine computes the artifact differently from {where} (INT8 features there: {features}): "
            f"{detail}; the gates above are this machine's"]
