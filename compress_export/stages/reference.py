"""Stage 3: the FP32 ONNX export (when a target or a compression step reads it), the original model's
outputs on the held-out data, once, the check that the export agrees with them, and the task."""

from __future__ import annotations

from ..exporters.onnx.fp32 import export_fp32
from ..metrics.fid import check_feature_model
from ..metrics.tasks import get_task
from ..samplers import get_sampler
from ..validators.reference_outputs import check_export, reference_outputs
from ..validators.sampled_calibration import sampled_calibration


def reference(job) -> None:
    if job.onnx_targets:
        job.fp32 = job.work / "model.fp32.onnx"
        export_fp32(job.model, job.fp32, next(job.calib.batches()))
    sampler = get_sampler(job.config.sampler)
    job.validation = reference_outputs(job.model, job.val, job.val_origin, job.config.progress, sampler)
    if sampler is not None and sampler.calls_per_image != 1:  # the denoiser is calibrated on what each call sees
        job.calib = sampled_calibration(job.model, job.calib, sampler, job.work, job.config.progress)
    named = job.config.task if job.config.task not in (None, "auto") else getattr(job.model, "task", None)
    named = "image-generation" if sampler is not None and named in (None, "auto") else named
    job.task = get_task(named, job.validation.batches[0][2])
    if "fid" in job.task.metrics:  # a feature model that cannot read the images is refused before calibration
        check_feature_model(job.validation.batches[0][2], job.config.fid_features)
    if job.fp32 is not None:
        job.export_check = check_export(job.fp32, job.validation)
