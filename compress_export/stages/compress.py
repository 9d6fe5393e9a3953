"""Stage 5: the compression steps, in the order asked, each through the CompressionMethod protocol."""

from __future__ import annotations

from ..compression import get_method
from ..compression.stages import time_stages


def compress(job) -> None:
    for name, settings in job.config.compression:
        method = get_method(name)
        job.compressed.append((method, method.apply(job, settings)))
    time_stages(job)


def source_for(job, target):
    """(model, FP32 ONNX, range table) a target is built from: the original, or what the compression
    steps that apply to it produced."""
    model, fp32 = job.model, job.fp32
    ranges = job.ranges if target.ranges == "onnx" else None
    for _, done in job.compressed:
        if not done.applies_to(target):
            continue
        model = done.model
        fp32 = done.fp32_onnx or fp32
        if done.ranges is not None and done.ranges_space == target.ranges:
            ranges = done.ranges
    return model, fp32, ranges
