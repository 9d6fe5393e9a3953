"""DDIM (Song et al., 2021) over a DDPM's discrete timesteps: N evenly spaced timesteps from the last training step
down to 0; eta=0 is deterministic, eta>0 adds seeded noise. The denoiser is fed the integer timestep and predicts the
noise (prediction=epsilon), the clean sample (sample) or v (v). The starting sample is the data file's: N(0, 1)."""

from __future__ import annotations

import numpy as np

from ..errors import UsageError
from .base import Sampler
from .spec import require


def alphas_cumprod(steps: int, beta_start: float, beta_end: float, schedule: str) -> np.ndarray:
    if schedule == "linear":
        betas = np.linspace(beta_start, beta_end, steps)
    elif schedule == "scaled_linear":
        betas = np.linspace(beta_start**0.5, beta_end**0.5, steps) ** 2
    elif schedule == "cosine":
        f = np.cos((np.arange(steps + 1) / steps + 0.008) / 1.008 * np.pi / 2) ** 2
        betas = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
    else:
        raise UsageError(f"--sampler ddim: schedule {schedule!r} is not linear, scaled_linear or cosine")
    return np.cumprod(1.0 - betas)


class Ddim(Sampler):
    name = "ddim"
    defaults = {"steps": 10, "train_steps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "schedule": "linear",
                "prediction": "epsilon", "eta": 0.0, "clip": 0.0}

    def check(self) -> None:
        super().check()
        o = self.options
        require(1 <= o["steps"] <= o["train_steps"], self.text, "needs 1 <= steps <= train_steps")
        require(0 < o["beta_start"] < o["beta_end"] < 1, self.text, "needs 0 < beta_start < beta_end < 1")
        require(o["prediction"] in ("epsilon", "sample", "v"), self.text, "prediction is epsilon, sample or v")
        require(o["schedule"] in ("linear", "scaled_linear", "cosine"), self.text,
                "schedule is linear, scaled_linear or cosine")
        require(o["eta"] >= 0 and o["clip"] >= 0, self.text, "eta and clip are not negative")

    def steps_called(self) -> int:
        return int(self.options["steps"])

    def timesteps(self) -> np.ndarray:
        o = self.options
        return np.round(np.linspace(o["train_steps"] - 1, 0, int(o["steps"]))).astype(np.int64)

    def sample(self, denoiser, start, noise):
        o = self.options
        alphas = alphas_cumprod(int(o["train_steps"]), o["beta_start"], o["beta_end"], o["schedule"])
        times, x = self.timesteps(), start
        for step, t in enumerate(times):
            alpha, before = alphas[t], (alphas[times[step + 1]] if step + 1 < len(times) else 1.0)
            clean, eps = self._split(denoiser(x, int(t)), x, alpha)
            if o["clip"]:
                clean = np.clip(clean, -o["clip"], o["clip"])
                eps = (x - np.sqrt(alpha) * clean) / np.sqrt(1 - alpha)
            spread = o["eta"] * np.sqrt((1 - before) / (1 - alpha) * (1 - alpha / before))
            x = np.sqrt(before) * clean + np.sqrt(max(1 - before - spread**2, 0.0)) * eps
            if spread > 0:
                x = x + spread * noise.normal(step + 1)
        return x

    def _split(self, out: np.ndarray, x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """(clean sample, noise) from what the denoiser predicts."""
        kind = self.options["prediction"]
        if kind == "epsilon":
            return (x - np.sqrt(1 - alpha) * out) / np.sqrt(alpha), out
        if kind == "sample":
            return out, (x - np.sqrt(alpha) * out) / np.sqrt(1 - alpha)
        if kind == "v":
            return np.sqrt(alpha) * x - np.sqrt(1 - alpha) * out, np.sqrt(alpha) * out + np.sqrt(1 - alpha) * x
        raise UsageError(f"--sampler ddim: prediction {kind!r} is not epsilon, sample or v")
