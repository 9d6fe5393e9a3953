"""Stages 1-2: load the model safely, then read calibration, held-out and training data."""

from __future__ import annotations

from ..data.run_data import run_data
from ..errors import UsageError
from ..metrics.fid_features import check_features
from ..samplers import get_sampler
from ..sources.loader import load_source


def check(config) -> None:
    """Refusals that need nothing loaded, before anything is written."""
    from ..compression.model_kinds import refuse_unsupported

    check_features(config.fid_features)
    get_sampler(config.sampler)  # a sampler setting or file that cannot work is refused before loading the model
    refuse_unsupported(config, "tensor")


def load(job) -> None:
    job.model = load_source(job.config)
    if not job.model.inputs:
        raise UsageError(f"{job.config.model}: the model declares no inputs, so there is nothing to feed it")


def prepare_data(job) -> None:
    data = run_data(job.config, job.model.inputs, job.work, job.model)
    job.config, job.calib, job.val, job.val_origin, job.train = (data.config, data.calib, data.val, data.val_origin,
                                                                 data.train)
