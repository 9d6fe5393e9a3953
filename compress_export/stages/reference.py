"""Stage 3: the FP32 ONNX export (when a target or a compression step reads it), the original model's
outputs on the held-out data, once, the check that the export agrees with them, and the task."""

from __future__ import annotations

from ..exporters.onnx.fp32 import export_fp32
from ..metrics.fid import check_feature_model
from ..metrics.tasks import get_task
from ..validators.reference_outputs import check_export, reference_outputs


def reference(job) -> None:
    if job.onnx_targets:
        job.fp32 = job.work / "model.fp32.onnx"
        export_fp32(job.model, job.fp32, next(job.calib.batches()))
    job.validation = reference_outputs(job.model, job.val, job.val_origin, job.config.progress)
    named = job.config.task if job.config.task not in (None, "auto") else getattr(job.model, "task", None)
    job.task = get_task(named, job.validation.batches[0][2])
    if "fid" in job.task.metrics:  # a feature model that cannot read the images is refused before calibration
        check_feature_model(job.validation.batches[0][2], job.config.fid_features)
    if job.fp32 is not None:
        job.export_check = check_export(job.fp32, job.validation)
