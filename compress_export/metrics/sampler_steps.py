"""How the error grows along the sampler: after every denoiser call, the mean cosine and PSNR of the compressed
model's sample against the FP32 model's sample at the same call (same starting noise, same seeds). Read from the
sampled run's TRAJECTORY output; without a sampler the image itself is the one step (a one-call generator)."""

from __future__ import annotations

from ..samplers import TRAJECTORY
from .base import Metric


def step_scores(reference, candidate) -> tuple[list[float], list[float]]:
    """Per step, the sum over images of cosine and of PSNR, from (batch, steps, ...) trajectories."""
    import numpy as np

    from .cosine import cosine_rows
    from .psnr import image_psnr

    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    cosines, psnrs = [], []
    for step in range(reference.shape[1]):
        cosine = cosine_rows(reference[:, step].reshape(len(reference), -1),
                             candidate[:, step].reshape(len(candidate), -1))
        cosines.append(float(np.nan_to_num(cosine, nan=-1.0).sum()))
        psnrs.append(float(np.nan_to_num(image_psnr(reference[:, step], candidate[:, step]), nan=0.0).sum()))
    return cosines, psnrs


class SamplerSteps(Metric):
    name = "sampler_steps"
    scope = "task"

    def start(self) -> dict:
        return {"cosine": [], "psnr": [], "images": 0}

    def update(self, state: dict, reference, candidate, labels=None) -> None:
        if TRAJECTORY in reference and TRAJECTORY in candidate:
            reference, candidate = reference[TRAJECTORY], candidate[TRAJECTORY]
        else:
            from .fid import image_output

            name = image_output(reference)
            if name is None or name not in candidate:
                return
            reference, candidate = reference[name][:, None], candidate[name][:, None]
        cosines, psnrs = step_scores(reference, candidate)
        state["cosine"] = [a + b for a, b in zip(state["cosine"], cosines, strict=True)] if state["cosine"] else cosines
        state["psnr"] = [a + b for a, b in zip(state["psnr"], psnrs, strict=True)] if state["psnr"] else psnrs
        state["images"] += len(reference)

    def result(self, state: dict) -> dict:
        if not state["images"]:
            return {}
        count = state["images"]
        return {"candidate": {"sampler_steps": {"cosine": [value / count for value in state["cosine"]],
                                                "psnr_db": [value / count for value in state["psnr"]],
                                                "images": count}}}


METRIC = SamplerSteps()
