"""What the model-changing steps (prune, student, distill, sparsity) share: where a step starts, how its new model
becomes the one every target is built from, and the before/after record: per stage its parameters, MACs per sample,
FP32 ONNX size, held-out cosine against the original and p50 latency (all stages timed in one process), and the
table and plot the report shows with the artifact last."""

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


def stages_before(job) -> list[dict]:
    """The stage rows of the last model-changing step, or the original's row when this step is the first."""
    for _, done in reversed(job.compressed):
        if "stages" in done.section:
            return list(done.section["stages"])
    return [stage_row(job, "original", job.model, job.fp32)]


def stage_row(job, stage: str, model, fp32: Path | None = None) -> dict:
    from ..sources.torch_source import differentiable_forward
    from .distill_torch import held_out_cosine

    forward = differentiable_forward(model)
    row = {"stage": stage, "parameters": sum(p.numel() for p in model.module.parameters()),
           "cosine": 1.0 if model is job.model else held_out_cosine(model.module, job.model.module, forward, job.val)}
    if fp32 is not None:
        import onnx

        from ..graphs.onnx_io import artifact_bytes
        from ..metrics.flops import count_model

        row["macs"] = count_model(onnx.load(str(fp32)), feeds=next(job.calib.batches()))["macs"]
        row["size_bytes"] = artifact_bytes(fp32)
        row[ONNX_KEY] = str(fp32)
    return row


ONNX_KEY = "_onnx"  # where a row keeps its FP32 ONNX until the stages are timed; not part of the report


def time_stages(job) -> None:
    """p50 of every stage's FP32 ONNX at each benchmark batch, all interleaved in one process (their ratios are
    comparable); nothing with --no-bench."""
    rows = list({id(row): row for _, done in job.compressed for row in done.section.get("stages", ())}.values())
    timed = [row for row in rows if ONNX_KEY in row]
    paths = [Path(row.pop(ONNX_KEY)) for row in timed]
    if job.config.bench is None or not timed:
        return
    from ..validators.bench import latency_in_subprocess
    from ..validators.speedup import bench_sample

    settings = job.config.bench
    by_model = latency_in_subprocess([("onnxruntime", path) for path in paths],
                                     bench_sample(job.validation, settings), settings)
    for row, by_batch in zip(timed, by_model, strict=True):
        row["p50_ms"] = {batch: stats["p50_ms"] for batch, stats in by_batch.items()}


def stage_table(stages: list[dict], report) -> list[str]:
    """Markdown: each stage, then this artifact, with the change against the original."""
    original = stages[0]
    batches = list(original.get("p50_ms", {}))
    candidate = (report.bench or {}).get("candidate") or {}
    lines = ["| stage | parameters | MACs per sample | FP32 ONNX size | "
             + "".join(f"p50 @ batch {batch} (ms) | " for batch in batches) + "held-out cosine vs original |",
             "|---|---|---|---|" + "---|" * len(batches) + "---|"]

    def cell(value, base, spec=",", unit="") -> str:
        if value is None:
            return "-"
        change = f" ({100 * (value - base) / base:+.0f}%)" if base and value != base else ""
        return f"{value:{spec}}{unit}{change}"

    for row in stages:
        p50 = row.get("p50_ms", {})
        lines.append(f"| {row['stage']} | {cell(row['parameters'], original['parameters'])} | "
                     f"{cell(row.get('macs'), original.get('macs'))} | "
                     f"{cell(_kb(row.get('size_bytes')), _kb(original.get('size_bytes')), ',.0f', ' KB')} | "
                     + "".join(f"{cell(p50.get(b), original['p50_ms'].get(b), '.2f')} | " for b in batches)
                     + f"{row['cosine']:.4f} |")
    cosines = [stats["cosine"] for stats in report.parity.values() if "cosine" in stats]
    if cosines:
        timed = candidate.get("by_batch", {})
        lines.append(f"| this artifact ({report.target}) | | | {_kb(report.artifact.get('size_bytes')) or 0:,.0f} KB | "
                     + "".join(f"{timed[b]['p50_ms']:.2f} (own run) | " if b in timed else "- | " for b in batches)
                     + f"{min(cosines):.4f} |")
    return lines


def _kb(size: int | None) -> float | None:
    return None if size is None else size / 1024


def plot_stages(stages: list[dict], report, path: Path) -> bool:
    """Held-out cosine vs p50 (relative to the original, largest batch) of every stage and this artifact (its
    ratio against the original FP32 from its own benchmark); False when nothing was timed."""
    from ..report.plots import plot_tradeoff

    batches = list(stages[0].get("p50_ms", {}))
    if not batches:
        return False
    batch = batches[-1]
    base = stages[0]["p50_ms"][batch]
    points = [(row["stage"], row["p50_ms"][batch] / base, row["cosine"], row.get("size_bytes") or 0)
              for row in stages if batch in row.get("p50_ms", {})]
    speedup = (report.bench or {}).get("ratios", {}).get(f"speedup_p50_batch{batch}")
    cosines = [stats["cosine"] for stats in report.parity.values() if "cosine" in stats]
    if speedup and cosines:
        points.append((report.target, 1 / speedup, min(cosines), report.artifact.get("size_bytes") or 0))
    return plot_tradeoff(points, "held-out cosine", path, batch)


def finish(job, tuned, section: dict, file_name: str) -> Compressed:
    """The step's FP32 ONNX and, where a target reads ONNX ranges, their calibration on the new graph."""
    from ..calibration.calibrate import calibrate_onnx
    from ..exporters.onnx.fp32 import export_fp32

    fp32 = job.work / file_name
    export_fp32(tuned, fp32, next(job.calib.batches()))
    table = calibrate_onnx(fp32, job.calib, job.calibration_recipe, progress=False) if job.ranges is not None \
        else None
    return Compressed(model=tuned, section=section, applies_to=lambda target: True, fp32_onnx=fp32, ranges=table,
                      ranges_space="onnx" if table is not None else None, applies_to_all=True)


def trained_stage(job, tuned, section: dict, file_name: str, stage: str, losses, plot: tuple[str, str],
                  rows_before: tuple = ()) -> Compressed:
    """`finish` for a step that trained: its stage row (after `rows_before`) and its loss plot (file, title)."""
    from .qat_settings import plot_losses

    done = finish(job, tuned, section, file_name)
    done.section["stages"] = [*stages_before(job), *rows_before, stage_row(job, stage, tuned, done.fp32_onnx)]
    kept = list(losses)
    done.files = {plot[0]: lambda path: plot_losses(kept, path, plot[1])}
    return done


def refuse_without_prune(job) -> None:
    """`job` None: the options alone already show there is no pruned or smaller model."""
    if job is None or not any(method.makes_student for method, _ in job.compressed):
        raise UsageError("--distill trains a pruned or smaller model on the original's outputs: use it with "
                         "--prune RATIO or --student every:K|file.py:factory")
