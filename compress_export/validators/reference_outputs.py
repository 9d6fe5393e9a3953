"""The original model's outputs on the held-out data (computed once per run), and the check that the FP32 ONNX
export agrees with them."""

from __future__ import annotations

import sys
from pathlib import Path

from ..data.calibration_data import LABEL_KEY, batch_rows
from ..data.validation_set import ValidationSet
from ..errors import ExportError
from ..metrics import get_metrics
from ..runtimes import open_runner
from .evaluate import compare, sampled

EXPORT_MIN_COSINE = 0.999


def reference_outputs(model, val, origin: str, progress: bool, sampler=None) -> ValidationSet:
    from tqdm import tqdm

    batches = []
    with model.reference_runner() as runner, tqdm(total=len(val), unit="sample", desc="reference outputs",
                                                  disable=not progress, file=sys.stderr, leave=False) as bar:
        for batch in val.batches(labels=True):
            labels = batch.pop(LABEL_KEY, None)
            batches.append((batch, labels, sampled(sampler, runner.infer, batch)))
            bar.update(batch_rows(batch))
    return ValidationSet(batches, origin, sampler)


def check_export(fp32: Path, validation: ValidationSet) -> dict:
    first = ValidationSet(validation.batches[:1], validation.origin, validation.sampler)
    parity = compare(lambda: open_runner("onnxruntime", str(fp32)), first, get_metrics(["cosine", "sqnr",
                                                                                       "abs_error", "top1"])).parity()
    worst = min(stats["cosine"] for stats in parity.values())
    if not worst >= EXPORT_MIN_COSINE:
        raise ExportError(f"the FP32 ONNX export disagrees with the original model (cosine {worst:.4f})")
    return parity
