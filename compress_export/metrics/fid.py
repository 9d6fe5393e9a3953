"""FID: the Fréchet distance between the feature statistics (mean, covariance) of the images the FP32 generator
and the candidate make from the same latent inputs. Features from fid_features (a named model, the bundled digits
classifier for 1x8x8 digits, or general features). 0 when the images are the same; lower is better."""

from __future__ import annotations

import math

from .base import Gate, Metric, MetricSettings


def frechet_distance(a, b) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the trace of the root from the eigenvalues of the
    symmetric S_a^(1/2) S_b S_a^(1/2) (no complex round-off, as scipy's sqrtm can give)."""
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.inf  # images with NaN or infinity (an overflowed candidate) are as far as images get
    mean = a.mean(axis=0) - b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    try:
        values, vectors = np.linalg.eigh(cov_a)
        root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
        middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    except np.linalg.LinAlgError:  # no convergence on extreme values: nothing to compare
        return math.inf
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(max(mean @ mean + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root, 0.0))


def image_output(outputs) -> str | None:
    """The output holding the images: the first shaped (batch, 1 or 3 channels, height, width), else the first
    four-dimensional one (a latent denoiser's 4 or 16 channels: its latents are what it makes)."""
    shaped = [name for name, value in outputs.items() if getattr(value, "ndim", 0) == 4]
    return next((name for name in shaped if outputs[name].shape[1] in (1, 3)), shaped[0] if shaped else None)


def check_feature_model(outputs, spec: str | None) -> None:
    """Before calibration: a named feature model that cannot read the generator's images is a usage error (exit 2)."""
    from .fid_features import check_reads

    name = image_output(outputs)
    if spec and name is not None:
        check_reads(outputs[name], spec)


class Fid(Metric):
    """`features`: the ONNX feature model the images are read through (None: the bundled default)."""

    name = "fid"
    scope = "task"
    label = "FID vs FP32 images"

    def __init__(self, features: str | None = None):
        self.features = features

    def configured(self, settings: MetricSettings) -> Fid:
        return Fid(settings.fid_features)
    gate = Gate("max_fid", 1.0, "Gate (image generators, --task image-generation): largest accepted Fréchet distance "
                "between the features of the FP32 and the compressed generator's images.", higher_is_better=False,
                score_key="fid")

    def start(self) -> dict:
        return {"reference": [], "candidate": [], "shape": ()}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        from .fid_features import features

        name = image_output(reference)
        if name is None:
            return
        state["shape"] = tuple(reference[name].shape[1:])
        state["reference"].append(features(reference[name], self.features))
        state["candidate"].append(features(candidate[name], self.features))

    def result(self, state: dict) -> dict:
        from .fid_features import feature_model_name

        if not state["reference"]:
            return {}
        import numpy as np

        reference, candidate = np.concatenate(state["reference"]), np.concatenate(state["candidate"])
        if len(reference) < 2:
            return {}
        return {"candidate": {"fid": frechet_distance(reference, candidate), "fid_samples": len(reference),
                              "fid_features": feature_model_name(self.features, state["shape"])}}

    def gate_values(self, parity: dict, metrics: dict) -> list[tuple[str, float]]:
        value = metrics.get("candidate", {}).get(self.gate.score_key)
        return [] if value is None else [(self.gate.name, value)]

    def rows(self, parity: dict, metrics: dict) -> list[tuple[str, float | None, float | None]]:
        value = metrics.get("candidate", {}).get(self.gate.score_key)
        return [] if value is None else [(self.label, 0.0, value)]


METRIC = Fid()
