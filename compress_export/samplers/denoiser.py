"""One batch's denoiser as a sampler sees it: `denoiser(x, level)` calls the model with the noisy sample and the noise
level in their inputs and the batch's conditions as given, returns its prediction shaped like x, and records what
the sampled run reports (the sample of every call, the calls' feeds for calibration). Classifier-free guidance
calls it once with the condition and once with the null condition."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from ..errors import UsageError
from .roles import Roles


class Denoiser:
    def __init__(self, call: Callable[[dict], dict], feeds: dict[str, np.ndarray], roles: Roles,
                 guidance: float = 1.0, condition: str | None = None, null: float = 0.0,
                 capture: Callable[[dict], None] | None = None):
        self.call, self.feeds, self.roles, self.capture = call, feeds, roles, capture
        self.guidance, self.null = guidance, null
        self.condition = _guided_input(roles, condition) if guidance != 1.0 else None
        self.samples: list[np.ndarray] = []  # the sample each call was given
        self.outputs: dict[str, np.ndarray] = {}  # the last call's outputs
        self.output: str | None = None  # which output the prediction is read from
        self.calls = 0

    def __call__(self, x: np.ndarray, level: float | None) -> np.ndarray:
        self.samples.append(np.array(x, copy=True))
        feeds = dict(self.feeds)
        feeds[self.roles.sample] = x.astype(self.feeds[self.roles.sample].dtype, copy=False)
        if self.roles.level is not None and level is not None:
            given = self.feeds[self.roles.level]
            feeds[self.roles.level] = np.full(given.shape, level).astype(given.dtype)
        prediction = self._predict(feeds, x)
        if self.condition is None:
            return prediction
        unconditioned = dict(feeds, **{self.condition: np.full_like(feeds[self.condition], self.null)})
        plain = self._predict(unconditioned, x)
        return plain + self.guidance * (prediction - plain)

    def _predict(self, feeds: dict, x: np.ndarray) -> np.ndarray:
        if self.capture is not None:
            self.capture(feeds)
        self.outputs = self.call(feeds)
        self.calls += 1
        self.output = self.output or _prediction_output(self.outputs, x)
        return np.asarray(self.outputs[self.output], np.float64)[:, : x.shape[1]]


def _guided_input(roles: Roles, named: str | None) -> str:
    if named is not None:
        if named not in roles.conditions:
            raise UsageError(f"--sampler condition={named}: not one of the denoiser's conditions "
                             f"({', '.join(roles.conditions) or 'none'})")
        return named
    if len(roles.conditions) != 1:
        raise UsageError("classifier-free guidance needs to know which input is the condition: give "
                         f"condition=INPUT (the denoiser's conditions: {', '.join(roles.conditions) or 'none'})")
    return roles.conditions[0]


def _prediction_output(outputs: dict, x: np.ndarray) -> str:
    """The first output shaped like the sample (a learned-variance model gives twice its channels: the first half)."""
    for name, value in outputs.items():
        shape = getattr(value, "shape", ())
        if len(shape) == x.ndim and shape[0] == x.shape[0] and shape[2:] == x.shape[2:] and shape[1] >= x.shape[1]:
            return name
    shapes = ", ".join(f"{name} {tuple(getattr(value, 'shape', ()))}" for name, value in outputs.items())
    raise UsageError(f"no output of the denoiser is shaped like its sample {tuple(x.shape)}: {shapes}")


class RowNoise:
    """Fresh noise for the stochastic steps, the same for the FP32 and the compressed denoiser: each image's comes
    from a generator seeded by its starting sample and the step, so it depends on neither the batch nor the model."""

    def __init__(self, start: np.ndarray):
        self.seeds = [zlib.crc32(np.ascontiguousarray(row).tobytes()) for row in start]
        self.shape = start.shape[1:]

    def normal(self, step: int) -> np.ndarray:
        return np.stack([np.random.default_rng([seed, step]).standard_normal(self.shape) for seed in self.seeds])
