"""Stage 3: the FP32 ONNX export (when a target or a compression step reads it), the original model's
outputs on the held-out data, once, the check that the export agrees with them, and the task."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx

from ..data import LABEL_KEY, batch_rows
from ..errors import ExportError
from ..job import ValidationSet
from ..metrics import get_metrics
from ..metrics.tasks import get_task
from ..onnx_io import save
from ..runtimes import open_runner
from ..validators.compare import compare

EXPORT_MIN_COSINE = 0.999


def export_fp32(model, path: Path, example: dict) -> None:
    model.export_onnx(path, example)
    graph = onnx.load(str(path))
    _name_unnamed_nodes(graph)
    save(graph, path)
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported ONNX model is invalid: {str(exc).splitlines()[0]}") from None


def _name_unnamed_nodes(graph: onnx.ModelProto) -> None:
    """Node lists and exclusions work by name; give every node a stable one."""
    taken = {node.name for node in graph.graph.node if node.name}
    for index, node in enumerate(graph.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def reference(job) -> None:
    if job.onnx_targets:
        job.fp32 = job.work / "model.fp32.onnx"
        export_fp32(job.model, job.fp32, next(job.calib.batches()))
    job.validation = reference_outputs(job.model, job.val, job.val_origin, job.config.progress)
    named = job.config.task if job.config.task not in (None, "auto") else getattr(job.model, "task", None)
    job.task = get_task(named, job.validation.batches[0][2])
    if job.fp32 is not None:
        job.export_check = check_export(job.fp32, job.validation)


def reference_outputs(model, val, origin: str, progress: bool) -> ValidationSet:
    from tqdm import tqdm

    batches = []
    with model.reference_runner() as runner, tqdm(total=len(val), unit="sample", desc="reference outputs",
                                                  disable=not progress, file=sys.stderr, leave=False) as bar:
        for batch in val.batches(labels=True):
            labels = batch.pop(LABEL_KEY, None)
            batches.append((batch, labels, runner.infer(batch)))
            bar.update(batch_rows(batch))
    return ValidationSet(batches, origin)


def check_export(fp32: Path, validation: ValidationSet) -> dict:
    first = ValidationSet(validation.batches[:1], validation.origin)
    parity = compare(lambda: open_runner("onnxruntime", str(fp32)), first, get_metrics(["cosine", "sqnr",
                                                                                       "abs_error", "top1"])).parity()
    worst = min(stats["cosine"] for stats in parity.values())
    if not worst >= EXPORT_MIN_COSINE:
        raise ExportError(f"the FP32 ONNX export disagrees with the original model (cosine {worst:.4f})")
    return parity
