"""Consistency sampling (Song et al., 2023): one call maps the starting sample at sigma_max to an image; with steps=N
each further step noises that image back to the next of N Karras sigmas above sigma_min (seeded noise, the same for
every model) and denoises it again."""

from __future__ import annotations

import numpy as np

from .karras import SIGMAS, SigmaSampler, karras_sigmas


class Consistency(SigmaSampler):
    name = "consistency"
    defaults = {**SIGMAS, "steps": 1}

    def steps_called(self) -> int:
        return int(self.options["steps"])

    def sample(self, denoiser, start, noise):
        # N levels from sigma_max down, short of sigma_min: at sigma_min a consistency model returns its input, so a
        # step there would add a call and change nothing.
        o = self.options
        sigmas = karras_sigmas(int(o["steps"]) + 1, o["sigma_min"], o["sigma_max"], o["rho"])[:-2]
        image = self.denoised(denoiser, start, sigmas[0])
        floor = self.options["sigma_min"]
        for step, sigma in enumerate(sigmas[1:], start=1):
            noisy = image + np.sqrt(max(sigma**2 - floor**2, 0.0)) * noise.normal(step)
            image = self.denoised(denoiser, noisy, sigma)
        return image
