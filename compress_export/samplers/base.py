"""What a sampler is: a schedule that makes each image from its starting sample with some denoiser calls, and the
sampled run every validation, search trial and reference goes through (FP32 and compressed alike)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from .denoiser import Denoiser, RowNoise
from .roles import find_roles
from .spec import require, take

GUIDANCE = {"guidance": 1.0, "condition": "", "null": 0.0, "sample": "", "level": ""}


class Sampler(ABC):
    """`text`: the setting as given, which the bundle records; `options`: the schedule's, with GUIDANCE's."""

    name = "sampler"
    defaults: dict = {}

    def __init__(self, text: str, options: dict):
        self.text, self.options = text, options

    @classmethod
    def from_options(cls, text: str, options: dict) -> Sampler:
        sampler = cls(text, take(options, text, {**cls.defaults, **GUIDANCE}))
        sampler.check()
        return sampler

    def check(self) -> None:
        """Refuse settings no model can be sampled with (a usage error)."""
        require(int(self.options.get("steps", 1)) >= 1, self.text, "steps must be at least 1")

    @property
    def calls_per_image(self) -> int:
        """Denoiser calls per image (twice as many with guidance)."""
        return self.steps_called() * (2 if self.options["guidance"] != 1.0 else 1)

    @abstractmethod
    def steps_called(self) -> int: ...

    @abstractmethod
    def sample(self, denoiser: Denoiser, start: np.ndarray, noise: RowNoise) -> np.ndarray:
        """The final image from the starting sample."""

    def describe(self) -> str:
        return self.text

    def setting(self) -> str:
        """The setting that makes this sampler again in another process (get_sampler)."""
        return self.text

    def run(self, call: Callable[[dict], dict], feeds: dict, capture: Callable[[dict], None] | None = None) -> dict:
        """The model's outputs of the last call with the final image in place of its prediction, and the sample
        after every call under TRAJECTORY."""
        from . import TRAJECTORY

        options = self.options
        roles = find_roles(feeds, options["sample"] or None, options["level"] or None)
        denoiser = Denoiser(call, feeds, roles, options["guidance"], options["condition"] or None, options["null"],
                            capture)
        start = np.asarray(feeds[roles.sample], np.float64)
        final = self.sample(denoiser, start, RowNoise(start))
        outputs = dict(denoiser.outputs)
        dtype = outputs[denoiser.output].dtype
        outputs[denoiser.output] = final.astype(dtype)
        outputs[TRAJECTORY] = np.stack([*denoiser.samples[1:], final], axis=1).astype(dtype)
        return outputs
