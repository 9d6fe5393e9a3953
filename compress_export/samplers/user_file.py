"""A sampler of the user's own: `FILE.py:FUNCTION`, called as FUNCTION(denoise, inputs, rng) for each batch, where
`denoise(feeds)` runs the model (FP32 or compressed) on a dict of its inputs and returns its outputs as a dict,
`inputs` are the batch's starting inputs from the data file and `rng` a numpy Generator seeded by them (the same
for every model). It returns the final images (an array, or a dict holding the prediction output's name).
The trajectory is the noisy sample of every call."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .base import GUIDANCE, Sampler
from .denoiser import RowNoise
from .roles import find_roles


class UserSampler(Sampler):
    name = "file"

    def __init__(self, text: str, path: Path, function):
        super().__init__(text, dict(GUIDANCE))
        self.path, self.function = path, function

    @classmethod
    def from_spec(cls, text: str, folder=None) -> UserSampler:
        file, _, function = text.partition(":")
        path = Path(file) if folder is None or Path(file).is_absolute() else Path(folder) / Path(file).name
        if not path.is_file():
            raise UsageError(f"--sampler {text!r}: no file {path}")
        spec = importlib.util.spec_from_file_location(f"compress_export_user_sampler_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as error:  # the user's code: its error is theirs to fix, in one line
            raise UsageError(f"--sampler {text!r}: {path} failed to load: {type(error).__name__}: {error}") from None
        found = getattr(module, function or "sample", None)
        if not callable(found):
            raise UsageError(f"--sampler {text!r}: {path} has no function {function or 'sample'!r}")
        return cls(text, path, found)

    @property
    def calls_per_image(self) -> int:
        return getattr(self, "_calls", 0)

    def setting(self) -> str:
        return f"{self.path.resolve()}:{self.text.partition(':')[2] or 'sample'}"

    def steps_called(self) -> int:
        return self.calls_per_image

    def sample(self, denoiser, start, noise):
        raise NotImplementedError  # run() below drives the user's function instead

    def run(self, call, feeds: dict, capture=None) -> dict:
        from . import TRAJECTORY

        sample = find_roles(feeds).sample
        samples, last = [], {}

        def denoise(given: dict) -> dict:
            if capture is not None:
                capture(dict(given))
            samples.append(np.array(given[sample], copy=True))
            last.update(call(dict(given)))
            return dict(last)

        rng = np.random.default_rng(RowNoise(np.asarray(feeds[sample])).seeds)
        try:
            result = self.function(denoise, {name: np.array(value) for name, value in feeds.items()}, rng)
        except UsageError:
            raise
        except Exception as error:
            raise UsageError(f"--sampler {self.text!r}: {type(error).__name__}: {error}") from None
        if not last:
            raise UsageError(f"--sampler {self.text!r}: the function never called the denoiser")
        self._calls = len(samples)
        output = next(iter(last))
        image = result[output] if isinstance(result, dict) else result
        image = np.asarray(image, dtype=np.asarray(last[output]).dtype)
        outputs = {**last, output: image}
        steps = [*samples[1:], *([image] if image.shape == samples[0].shape else [])]
        if steps:  # the images of a latent sampler are not its samples: the curve is the latents'
            outputs[TRAJECTORY] = np.stack(steps, axis=1).astype(image.dtype)
        return outputs
