"""Samplers: how an image generator's denoiser is called to make one image. A built-in schedule is one module with a
`Sampler` subclass plus one line in SAMPLERS; a user's own is `file.py:function` (samplers/user_file.py).

Without a sampler the model's own output is the image (one call, as for a one-step generator)."""

from __future__ import annotations

from ..errors import UsageError
from ..util.lazy import resolve
from .spec import parse_spec

TRAJECTORY = "sampler_steps"  # the sampled run's outputs: the sample after every denoiser call, (batch, steps, ...)

SAMPLERS: dict[str, str] = {
    "consistency": "compress_export.samplers.consistency:Consistency",
    "ddim": "compress_export.samplers.ddim:Ddim",
    "euler": "compress_export.samplers.karras:Euler",
    "edm": "compress_export.samplers.karras:Heun",
}


def get_sampler(text: str | None, folder=None):
    """The sampler `text` names (`ddim:steps=10`, `edm:steps=18,sigma_max=80`, `my_sampler.py:sample`), or None.
    A user file's path is read relative to `folder` when given (a bundle's reference/)."""
    if not text:
        return None
    name, options = parse_spec(text)
    if name.endswith(".py") or ".py:" in text:
        from .user_file import UserSampler

        return UserSampler.from_spec(text, folder)
    if name not in SAMPLERS:
        raise UsageError(f"unknown sampler {name!r}: give one of {', '.join(SAMPLERS)} (with :steps=N,...) or "
                         "FILE.py:FUNCTION")
    return resolve(SAMPLERS[name]).from_options(text, options)


__all__ = ["SAMPLERS", "TRAJECTORY", "get_sampler"]
