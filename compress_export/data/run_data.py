"""The data a run reads: calibration samples (an .npz, text tokenized by the model's own tokenizer, or noise when
asked), held-out samples (--val-data, or a seeded split of the calibration data that calibration never sees) and
training samples; a model that takes batches of exactly N is calibrated, validated and benchmarked in batches of N."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import UsageError
from .calibration_data import CalibrationData, load_npz_data, random_data
from .layout import fixed_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunData:
    config: object  # the PipelineConfig, its batch sizes fitted to a model's fixed batch
    calib: CalibrationData
    val: CalibrationData
    val_origin: str
    train: CalibrationData


def calibration_data(config, specs, work: Path, model=None) -> CalibrationData:
    if config.text_data:
        folder = getattr(model, "tokenizer_folder", None)
        if folder is None:
            raise UsageError("--text-data needs a Hugging Face checkpoint folder as MODEL (its tokenizer reads the "
                             "text); for other models give --calib-data FILE.npz")
        from .text import tokenize_text

        path = tokenize_text(folder, Path(config.text_data), work / "text" / "tokens.npz", config.seq_len)
        return load_npz_data(str(path), specs, config.calib_batch, config.calib_samples)
    if config.calib_data:
        return load_npz_data(config.calib_data, specs, config.calib_batch, config.calib_samples)
    if config.random_data:
        return random_data(specs, config.calib_samples or config.random_samples, config.calib_batch, config.seed,
                           work / "random")
    raise UsageError("no calibration data: give --calib-data FILE.npz (or --random-data to use noise)")


def run_data(config, specs, work: Path, model) -> RunData:
    batch = fixed_batch(specs)
    if batch is not None and batch != config.calib_batch:
        log.info("the model takes batches of exactly %d: calibrating and validating in batches of %d", batch, batch)
        config = replace(config, calib_batch=batch)
        if config.bench is not None:
            config = replace(config, bench=replace(config.bench, batches=(batch,)))
    calib = calibration_data(config, specs, work, model)
    if config.val_data:
        val = load_npz_data(config.val_data, specs, config.calib_batch)
        if batch is not None:
            calib, val = (replace(data, whole_batches=True) for data in (calib, val))
        origin = f"--val-data {config.val_data}"
    else:
        if len(calib) < 2:
            raise UsageError("need at least 2 samples to hold some out for validation; give --val-data")
        whole = calib
        calib, val = whole.split(config.holdout, config.seed)
        if batch is not None:
            calib, val = (replace(data, whole_batches=True) for data in (calib, val))
        if len(calib) < (batch or 1) or len(val) < (batch or 1):
            raise UsageError(f"{len(whole)} samples are too few to hold out {config.holdout:.0%} for validation: "
                             "give more samples, another --holdout, or --val-data")
        origin = (f"held out {config.holdout:.0%} of the calibration data (seed {config.seed}), "
                  "not used to calibrate")
    train = load_npz_data(config.train_data, specs, config.calib_batch) if config.train_data else calib
    return RunData(config, calib, val, origin, train)
