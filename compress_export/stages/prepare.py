"""Stages 1-2: load the model safely, then read calibration, held-out and training data."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from ..data import infer_specs, load_npz_data, random_data
from ..errors import UsageError
from ..layout import fixed_batch
from ..sources import LoadedModel, load_model

log = logging.getLogger(__name__)
SPEC_CARRYING_SUFFIXES = (".onnx", ".pt2", ".keras", ".h5", ".hdf5")


def load(job) -> None:
    job.model = load_source(job.config)
    if not job.model.inputs:
        raise UsageError(f"{job.config.model}: the model declares no inputs, so there is nothing to feed it")


def load_source(config) -> LoadedModel:
    """The model named by `config.model`; input specs from the file, `--input`, or the data file."""
    data_path = config.calib_data or config.val_data
    carries_specs = Path(config.model).suffix in SPEC_CARRYING_SUFFIXES
    data_specs = infer_specs(data_path) if data_path and not config.inputs and not carries_specs else ()
    model = load_model(config.model, weights=config.weights, inputs=config.inputs, data_specs=data_specs,
                       trust_pickle=config.trust_pickle)
    if config.inputs and model.framework == "onnx":
        log.info("--input ignored: the ONNX file declares its inputs")
    return model


def calibration_data(config, specs, work: Path, model=None):
    if config.text_data:
        folder = getattr(model, "tokenizer_folder", None)
        if folder is None:
            raise UsageError("--text-data needs a Hugging Face checkpoint folder as MODEL (its tokenizer reads the "
                             "text); for other models give --calib-data FILE.npz")
        from ..sources.hf_source import tokenize_text

        path = tokenize_text(folder, Path(config.text_data), work / "text" / "tokens.npz", config.seq_len)
        return load_npz_data(str(path), specs, config.calib_batch, config.calib_samples)
    if config.calib_data:
        return load_npz_data(config.calib_data, specs, config.calib_batch, config.calib_samples)
    if config.random_data:
        return random_data(specs, config.calib_samples or config.random_samples, config.calib_batch, config.seed,
                           work / "random")
    raise UsageError("no calibration data: give --calib-data FILE.npz (or --random-data to use noise)")


def prepare_data(job) -> None:
    config, specs = job.config, job.model.inputs
    batch = fixed_batch(specs)
    if batch is not None and batch != config.calib_batch:
        log.info("the model takes batches of exactly %d: calibrating and validating in batches of %d", batch, batch)
        config = replace(config, calib_batch=batch)
        if config.bench is not None:
            config = replace(config, bench=replace(config.bench, batches=(batch,)))
        job.config = config
    calib = calibration_data(config, specs, job.work, job.model)
    if config.val_data:
        job.calib, job.val = calib, load_npz_data(config.val_data, specs, config.calib_batch)
        if batch is not None:
            job.calib, job.val = (replace(data, whole_batches=True) for data in (job.calib, job.val))
        job.val_origin = f"--val-data {config.val_data}"
    else:
        if len(calib) < 2:
            raise UsageError("need at least 2 samples to hold some out for validation; give --val-data")
        job.calib, job.val = calib.split(config.holdout, config.seed)
        if batch is not None:
            job.calib, job.val = (replace(data, whole_batches=True) for data in (job.calib, job.val))
        if len(job.calib) < (batch or 1) or len(job.val) < (batch or 1):
            raise UsageError(f"{len(calib)} samples are too few to hold out {config.holdout:.0%} for validation: "
                             "give more samples, another --holdout, or --val-data")
        job.val_origin = (f"held out {config.holdout:.0%} of the calibration data (seed {config.seed}), "
                          "not used to calibrate")
    job.train = load_npz_data(config.train_data, specs, config.calib_batch) if config.train_data else job.calib
