"""The before/after record of the model-changing steps (prune, distill): per stage its parameters, MACs per
sample and held-out cosine against the original, and the table the report shows with the artifact last."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError


def torch_module_of(model, flag: str):
    if model.framework != "torch" or getattr(model, "exported", None) is not None:
        raise UsageError(f"{flag} changes a PyTorch nn.Module: give a factory (file.py:factory) or a Hugging Face "
                         f"checkpoint folder, not a {model.framework if model.framework != 'torch' else '.pt2'} model")
    return model.module


def starting_point(job, flag: str):
    """(model, its FP32 ONNX, its nn.Module) a model-changing step starts from (after earlier such steps)."""
    from .base import current_model

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
