"""Which of a denoiser's inputs is the noisy sample, which the noise level (a timestep or sigma), and which are
conditions passed through unchanged: by name where one says it, else by shape."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError

LEVEL_NAME = re.compile(r"(^|[_.])(t|time|times|timestep|timesteps|sigma|sigmas|noise_level|noise_levels|c_noise)"
                        r"($|[_.:])", re.I)
SAMPLE_NAME = re.compile(r"sample|noisy|latent|^x($|_)|^x_t$|image", re.I)


@dataclass(frozen=True)
class Roles:
    sample: str
    level: str | None
    conditions: tuple[str, ...]


def find_roles(feeds: dict[str, np.ndarray], sample: str | None = None, level: str | None = None) -> Roles:
    """`sample`/`level` name them where the user did (--sampler ddim:sample=x,level=t)."""
    for given in (sample, level):
        if given is not None and given not in feeds:
            raise UsageError(f"--sampler names input {given!r}, the denoiser takes {', '.join(feeds)}")
    sample = sample or _sample_input(feeds)
    rows = feeds[sample].shape[0]
    level = level or _level_input(feeds, sample, rows)
    return Roles(sample, level, tuple(name for name in feeds if name not in (sample, level)))


def _sample_input(feeds: dict[str, np.ndarray]) -> str:
    images = [name for name, value in feeds.items() if value.ndim >= 3 and np.issubdtype(value.dtype, np.floating)]
    if not images:
        raise UsageError(f"a sampler needs the noisy sample as a float input of 3 or more dimensions; the denoiser "
                         f"takes {_shapes(feeds)}")
    named = [name for name in images if SAMPLE_NAME.search(name)]
    return (named or images)[0]


def _level_input(feeds: dict[str, np.ndarray], sample: str, rows: int) -> str | None:
    scalars = [name for name, value in feeds.items()
               if name != sample and value.size in (1, rows) and np.issubdtype(value.dtype, np.number)]
    named = [name for name in scalars if LEVEL_NAME.search(name)]
    if len(named) == 1:
        return named[0]
    if len(scalars) == 1 and not named:
        return scalars[0]
    if not scalars:
        return None  # a denoiser that is told no noise level (a fixed-schedule consistency model)
    raise UsageError(f"cannot tell which of the denoiser's inputs {', '.join(named or scalars)} is the noise level: "
                     "name it, e.g. --sampler ddim:steps=10,level=INPUT")


def _shapes(feeds: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{name} {tuple(value.shape)} {value.dtype}" for name, value in feeds.items())
