"""Samplers over Karras et al.'s sigma schedule (EDM, 2022) for a denoiser that predicts the clean sample (or the
noise: prediction=epsilon): Euler (N calls) and Heun (EDM's second-order sampler, 2N-1 calls). The starting sample
is the data file's, already at sigma_max (noise * sigma_max, as such samplers begin)."""

from __future__ import annotations

import numpy as np

from .base import Sampler
from .spec import require

SIGMAS = {"steps": 10, "sigma_min": 0.002, "sigma_max": 80.0, "rho": 7.0, "prediction": "sample", "level_feed": "sigma"}


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float) -> np.ndarray:
    """steps sigmas from sigma_max down to sigma_min, then 0."""
    ramp = np.linspace(0, 1, steps) if steps > 1 else np.zeros(1)
    high, low = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return np.append((high + ramp * (low - high)) ** rho, 0.0)


class SigmaSampler(Sampler):
    defaults = SIGMAS

    def check(self) -> None:
        super().check()
        o = self.options
        require(0 < o["sigma_min"] < o["sigma_max"], self.text, "needs 0 < sigma_min < sigma_max")
        require(o["rho"] > 0, self.text, "rho must be positive")
        require(o["prediction"] in ("sample", "epsilon"), self.text, "prediction is sample or epsilon")
        require(o["level_feed"] in ("sigma", "c_noise"), self.text, "level_feed is sigma or c_noise (log(sigma)/4)")

    def sigmas(self) -> np.ndarray:
        o = self.options
        return karras_sigmas(int(o["steps"]), o["sigma_min"], o["sigma_max"], o["rho"])

    def denoised(self, denoiser, x: np.ndarray, sigma: float) -> np.ndarray:
        level = 0.25 * np.log(sigma) if self.options["level_feed"] == "c_noise" else sigma
        out = denoiser(x, float(level))
        return x - sigma * out if self.options["prediction"] == "epsilon" else out


class Euler(SigmaSampler):
    name = "euler"

    def steps_called(self) -> int:
        return int(self.options["steps"])

    def sample(self, denoiser, start, noise):
        x, sigmas = start, self.sigmas()
        for sigma, following in zip(sigmas[:-1], sigmas[1:], strict=True):
            slope = (x - self.denoised(denoiser, x, sigma)) / sigma
            x = x + (following - sigma) * slope
        return x


class Heun(SigmaSampler):
    name = "edm"

    def steps_called(self) -> int:
        return 2 * int(self.options["steps"]) - 1

    def sample(self, denoiser, start, noise):
        x, sigmas = start, self.sigmas()
        for sigma, following in zip(sigmas[:-1], sigmas[1:], strict=True):
            slope = (x - self.denoised(denoiser, x, sigma)) / sigma
            stepped = x + (following - sigma) * slope
            if following > 0:
                second = (stepped - self.denoised(denoiser, stepped, following)) / following
                stepped = x + (following - sigma) * (slope + second) / 2
            x = stepped
        return x
