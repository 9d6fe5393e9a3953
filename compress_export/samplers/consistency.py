"""Consistency sampling (Song et al., 2023): one call maps the starting sample at sigma_max to an image; with steps=N
each further step noises that image back to the next of N Karras sigmas (seeded noise, the same for every model) and
denoises it again."""

from __future__ import annotations

import numpy as np

from .karras import SIGMAS, SigmaSampler


class Consistency(SigmaSampler):
    name = "consistency"
    defaults = {**SIGMAS, "steps": 1}

    def steps_called(self) -> int:
        return int(self.options["steps"])

    def sample(self, denoiser, start, noise):
        sigmas = self.sigmas()[:-1]
        image = self.denoised(denoiser, start, sigmas[0])
        floor = self.options["sigma_min"]
        for step, sigma in enumerate(sigmas[1:], start=1):
            noisy = image + np.sqrt(max(sigma**2 - floor**2, 0.0)) * noise.normal(step)
            image = self.denoised(denoiser, noisy, sigma)
        return image
