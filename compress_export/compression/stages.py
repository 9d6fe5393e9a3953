"""What the model-changing steps (prune, student, distill) share: where a step starts, how its new model becomes
the one every target is built from, and the before/after record: per stage its parameters, MACs per sample and
held-out cosine against the original, and the table the report shows with the artifact last."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .base import Compressed, current_model


def torch_module_of(model, flag: str):
    if model.framework != "torch" or getattr(model, "exported", None) is not None:
        raise UsageError(f"{flag} changes a PyTorch nn.Module: give a factory (file.py:factory) or a Hugging Face "
                         f"checkpoint folder, not a {model.framework if model.framework != 'torch' else '.pt2'} model")
    return model.module


def starting_point(job, flag: str):
    """(model, its FP32 ONNX, its nn.Module) a model-changing step starts from (after earlier such steps)."""
    model, fp32, _ = current_model(job)
    return model, fp32, torch_module_of(model, flag)


def stage_row(job, stage: str, model, fp32: Path | None = None) -> dict:
    from ..sources.torch_source import differentiable_forward
    from .distill_torch import held_out_cosine

    forward = differentiable_forward(model)
    row = {"stage": stage, "parameters": sum(p.numel() for p in model.module.parameters()),
           "cosine": 1.0 if model is job.model else held_out_cosine(model.module, job.model.module, forward, job.val)}
    if fp32 is not None:
        import onnx

        from ..metrics.flops import count_model

        row["macs"] = count_model(onnx.load(str(fp32)), feeds=next(job.calib.batches()))["macs"]
    return row


def stage_table(stages: list[dict], report) -> list[str]:
    """Markdown: each stage, then this artifact, with the change against the original."""
    original = stages[0]
    lines = ["| stage | parameters | MACs per sample | held-out cosine vs original |", "|---|---|---|---|"]

    def change(value, base) -> str:
        return f" ({100 * (value - base) / base:+.0f}%)" if base and value is not None and value != base else ""

    for row in stages:
        macs = row.get("macs")
        lines.append(f"| {row['stage']} | {row['parameters']:,}{change(row['parameters'], original['parameters'])} | "
                     f"{'-' if macs is None else f'{macs:,}'}{change(macs, original.get('macs'))} | "
                     f"{row['cosine']:.4f} |")
    cosines = [stats["cosine"] for stats in report.parity.values() if "cosine" in stats]
    if cosines:
        lines.append(f"| this artifact ({report.target}) | | | {min(cosines):.4f} |")
    return lines


def finish(job, tuned, section: dict, file_name: str) -> Compressed:
    """The step's FP32 ONNX and, where a target reads ONNX ranges, their calibration on the new graph."""
    from ..calibrate import calibrate_onnx
    from ..stages.reference import export_fp32

    fp32 = job.work / file_name
    export_fp32(tuned, fp32, next(job.calib.batches()))
    table = calibrate_onnx(fp32, job.calib, job.calibration_recipe, progress=False) if job.ranges is not None \
        else None
    return Compressed(model=tuned, section=section, applies_to=lambda target: True, fp32_onnx=fp32, ranges=table,
                      ranges_space="onnx" if table is not None else None, applies_to_all=True)


MODEL_CHANGING = ("prune", "student")


def refuse_without_prune(job) -> None:
    if not any(method.name in MODEL_CHANGING for method, _ in job.compressed):
        raise UsageError("--distill trains a pruned or smaller model on the original's outputs: use it with "
                         "--prune RATIO or --student every:K|file.py:factory")
