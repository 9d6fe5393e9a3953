"""Stage 4: the FP32 ONNX graph's range table, when a target reads one."""

from __future__ import annotations

from ..calibration.calibrate import NothingToQuantize
from ..calibration.range_source import onnx_ranges


def ranges(job) -> None:
    if any(target.ranges == "onnx" for target in job.targets):
        try:
            job.ranges = onnx_ranges(job.config, job.fp32, job.calib, job.calibration_recipe)
        except NothingToQuantize as error:  # the targets that need ranges fail one by one; the rest go on
            job.ranges_error = error
