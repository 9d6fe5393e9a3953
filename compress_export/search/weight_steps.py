"""Which PTQ weight steps an INT8 target's weights go through. `--ptq auto`: when the plain export misses its
budget, each applicable step is tried alone, then the ones that helped together; the best export that beats
the plain one is kept (and the activation search goes on from it). A list: those steps, always. `none`: off."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import onnx

from ..calibration.range_source import onnx_ranges
from ..exporters.onnx.qdq_rewrites import quantized_activations
from ..graphs.onnx_io import save
from ..graphs.selection import select_nodes
from ..metrics.gates import ranking_key
from ..ptq.steps import RESHAPING, StepInputs, apply_steps, graph_digest, ordered
from .activations import Evaluator


@dataclass
class WeightChoice:
    steps: tuple[str, ...] = ()
    changed: dict[str, int] = field(default_factory=dict)
    tried: dict[str, dict] = field(default_factory=dict)  # "+".join(steps) ("" the plain export) -> weights alone

    def describe(self) -> str:
        if not self.steps:
            return "PTQ weight steps: none kept" + (f" ({len(self.tried) - 1} tried, none beat the plain "
                                                    "weights)" if len(self.tried) > 1 else "")
        done = ", ".join(f"{name} ({self.changed.get(name, 0)})" for name in self.steps)
        before, after = self.tried.get(""), self.tried.get("+".join(self.steps))
        if before and after and before.get("cosine") is not None and after.get("cosine") is not None:
            done += (f"; weights alone (every activation in float) cosine {before['cosine']:.4f} -> "
                     f"{after['cosine']:.4f}")
        return f"PTQ weight steps: {done}"


def choose_weight_steps(job, target, ctx, artifact, suite, within: bool, validate):
    """Returns (artifact, suite, ctx, WeightChoice or None); the ctx the chosen export was built from."""
    setting = job.config.recipe.weight_steps
    if setting == "none" or ctx.ranges is None or ctx.fp32_onnx is None or job.calib is None or job.work is None:
        return artifact, suite, ctx, None
    if setting == "auto" and (within or not job.config.fallback or not target.budget_search):
        return artifact, suite, ctx, None
    original = onnx.load(str(ctx.fp32_onnx))
    inputs = StepInputs(job.calib, job.config.recipe.per_channel,
                        {node.name for node in select_nodes(original, job.config.recipe)} - set(ctx.float_nodes),
                        statistics=job.ptq_statistics)
    folder = job.work / "ptq" / target.name
    folder.mkdir(parents=True, exist_ok=True)
    choice = WeightChoice(tried={"": _weights_alone(job, target, ctx, artifact, folder)})
    best = _Candidate(ranking_key(job.config.gates, choice.tried[""]), (), None, artifact, ctx, {})

    def attempt(steps: tuple[str, ...]):
        nonlocal best
        model = onnx.ModelProto.FromString(original.SerializeToString())
        changed = apply_steps(model, steps, inputs)
        if not any(changed.values()):
            return None
        label = "+".join(steps)
        path, trial_dir = folder / f"{label}.onnx", folder / label
        trial_dir.mkdir(exist_ok=True)
        save(model, path)
        ranges = ctx.ranges
        if any(changed.get(name) for name in RESHAPING):  # calibrated once per graph, for every target that tries it
            key = ("ranges", graph_digest(model))
            if key not in job.ptq_statistics:
                job.ptq_statistics[key] = onnx_ranges(replace(job.config, progress=False), path, job.calib,
                                                      job.calibration_recipe)
            ranges = job.ptq_statistics[key]
        trial_ctx = replace(ctx, fp32_onnx=path, ranges=ranges, bundle_dir=trial_dir)
        trial_artifact = target.run_export(trial_ctx)
        choice.tried[label] = _weights_alone(job, target, trial_ctx, trial_artifact, folder)
        key = ranking_key(job.config.gates, choice.tried[label])
        if key > best.key or setting != "auto":
            best = _Candidate(key, steps, trial_dir, trial_artifact, replace(trial_ctx, bundle_dir=ctx.bundle_dir),
                              changed)
        return key

    if setting != "auto":
        attempt(ordered(setting.split(",")))
    else:
        plain = best.key
        helped = [step for step in _applicable(original, job) if (attempt((step,)) or plain) > plain]
        if len(helped) > 1:
            attempt(ordered(helped))
    choice.steps, choice.changed, artifact = best.steps, best.changed, best.artifact
    if best.folder is not None:
        shutil.copytree(best.folder, ctx.bundle_dir, dirs_exist_ok=True)  # what was measured is what ships
        suite = validate(artifact, ctx.bundle_dir, job)
    return with_choice(artifact, choice), suite, best.ctx, choice


def with_choice(artifact, choice: WeightChoice | None):
    """The artifact with the weight steps' note and record (an export again from the chosen graph needs them
    too: it ships those weights)."""
    if choice is None:
        return artifact
    record = {"steps": list(choice.steps), "weights_alone": choice.tried}
    return replace(artifact, notes=artifact.notes + (choice.describe(),), details={**artifact.details, "ptq": record})


@dataclass
class _Candidate:
    """The best export so far: its score key, its steps, the folder it was written to (None: the plain export)."""

    key: tuple
    steps: tuple[str, ...]
    folder: Path | None
    artifact: object
    ctx: object
    changed: dict


def _weights_alone(job, target, ctx, artifact, folder: Path) -> dict:
    """The artifact's score with every activation in float: what its weights' rounding alone costs, the part
    the weight steps change (with activations quantized, a calibrator's clipping can hide it or fake a gain)."""
    path = ctx.bundle_dir / artifact.path
    quantized = onnx.load(str(path if path.suffix == ".onnx" else target.write_search_graph(ctx, folder)))
    evaluator = Evaluator(quantized, onnx.load(str(ctx.fp32_onnx)), job.validation.batches, job.config.gates,
                          job.task_metrics, artifact.runtime, sampler=job.validation.sampler)
    return evaluator.score(quantized_activations(quantized))


def _applicable(model: onnx.ModelProto, job) -> list[str]:
    from ..ptq.equalization import conv_pairs
    from ..ptq.smoothing import smoothing_sites

    steps = ["learned-rounding", "bias-correction"]
    if not (job.config.ranges_from or job.config.ranges_from_cache):  # the user's ranges fit the graph as it is
        steps = [*(["equalization"] if conv_pairs(model) else []),
                 *(["smoothquant"] if smoothing_sites(model) else []), *steps]
    return steps
