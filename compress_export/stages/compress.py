"""Stage 5: the compression steps, in the order asked, each through the CompressionMethod protocol."""

from __future__ import annotations

from ..compression import get_method
from ..compression.chain import time_stages


def compress(job) -> None:
    for name, settings in job.config.compression:
        method = get_method(name)
        job.compressed.append((method, method.apply(job, settings)))
    time_stages(job)
