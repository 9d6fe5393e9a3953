"""The quality budget for one target: export; when a quantized artifact misses the gates, search other
calibrators' ranges, per-tensor ranges, then the activations in float that cost the least speed, and ship
the searched graph (or export again with its fallback nodes, where the target's placement rules ask)."""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import onnx

from ..calibration.calibrate import ranges_by_method
from ..data.calibration_data import batch_rows
from ..data.validation_set import SUBSAMPLE, subsample
from ..errors import UsageError
from ..exporters.onnx.qdq_rewrites import adjacent_nodes, quantized_activations, searched_graph, speed_cost, speed_costs
from ..graphs.onnx_io import data_file, save
from ..graphs.selection import op_types
from ..metrics.flops import macs_by_node
from ..metrics.gates import gate_results
from ..metrics.gates import score as gate_scores
from ..runtimes import open_runner
from ..validators.evaluate import compare
from .activations import Evaluator, search_budget
from .estimated import search_estimated
from .weight_steps import choose_weight_steps, with_choice


def validate(artifact, folder: Path, job):
    path = folder / artifact.path
    return compare(lambda: open_runner(artifact.runtime, str(path)), job.validation, job.task_metrics)


def export_within_budget(job, target, ctx):
    """Returns the artifact, its metric suite, the search (or None) and the ranges it was built with, after the
    target's finishing rewrite (validated again, so the numbers are the shipped file's)."""
    artifact, suite, search, ranges = _export_searched(job, target, ctx)
    if not target.finish:
        return artifact, suite, search, ranges
    path = ctx.bundle_dir / artifact.path
    unfinished = _read_files(path)
    notes = target.run_finish(path, job.validation.batches[0][0])
    outcome = None  # the report says when the gates decided whether the finished graph ships
    if notes and _read_files(path) != unfinished:
        finished = validate(artifact, ctx.bundle_dir, job)
        if _within(job, suite) and not _within(job, finished):
            _write_files(unfinished)
            notes = [f"{notes[0].split(' (')[0]} undone: the finished graph missed a gate the unfinished one met"]
            outcome = "undone"
        else:
            suite, outcome = finished, "kept"
    if notes:
        artifact = replace(artifact, notes=artifact.notes + tuple(notes))
    if outcome:
        artifact = replace(artifact, details={**artifact.details, "finishing_rewrite": outcome})
    return artifact, suite, search, ranges


def _read_files(path: Path) -> dict[Path, bytes | None]:
    """The artifact and its external data file (None: none), to put back when a finishing rewrite costs a gate."""
    return {file: file.read_bytes() if file.exists() else None for file in (path, data_file(path))}


def _write_files(files: dict[Path, bytes | None]) -> None:
    for file, content in files.items():
        if content is None:
            file.unlink(missing_ok=True)
        else:
            file.write_bytes(content)


RANK_SUBSAMPLE = 16  # samples a ranking trial reads: it orders the tensors, the decisions read the subsample
TRIAL_MACS = 60e9  # a trial's compute on the subsample (~1-2 s on two cores): large models score on fewer samples
MIN_TRIAL_SAMPLES = 8


def trial_samples(macs_per_sample: float, sampler=None) -> int:
    """Samples a search trial reads: SUBSAMPLE, fewer where each costs much (a 128x128 denoiser: 7.5 GMAC a call);
    whatever meets the budget on them is then scored on the whole validation set."""
    calls = max(getattr(sampler, "calls_per_image", 1) or 1, 1)
    if not macs_per_sample:
        return SUBSAMPLE
    return int(min(SUBSAMPLE, max(MIN_TRIAL_SAMPLES, TRIAL_MACS // (macs_per_sample * calls))))


def _export_searched(job, target, ctx):
    """The search rewrites ONNX graphs: the artifact, or the graph a target converts into its own format."""
    artifact = target.run_export(ctx)
    suite = validate(artifact, ctx.bundle_dir, job)
    artifact, suite, ctx, weights = choose_weight_steps(job, target, ctx, artifact, suite, _within(job, suite),
                                                        validate)
    path = ctx.bundle_dir / artifact.path
    searchable = (target.budget_search and job.config.fallback and ctx.ranges is not None
                  and (path.suffix == ".onnx" or target.search_graph))
    if not searchable or _within(job, suite):
        return artifact, suite, None, ctx.ranges
    if path.suffix == ".onnx":
        quantized = onnx.load(str(path))
    else:
        with tempfile.TemporaryDirectory(prefix="ce-search-graph-") as tmp:
            quantized = onnx.load(str(target.write_search_graph(ctx, Path(tmp))))
    if target.budget_search == "rewrite":
        search, ranges = _search(job, ctx, quantized, artifact.runtime)
        if ranges is not ctx.ranges or search.float_tensors:
            save(searched_graph(quantized, onnx.load(str(ctx.fp32_onnx)), search.float_tensors,
                                search.range_choice.ranges if search.range_choice else None), path)
            suite = validate(artifact, ctx.bundle_dir, job)
        return artifact, suite, _shipped(job, search, suite), ranges
    with tempfile.TemporaryDirectory(prefix="ce-trials-") as tmp:
        search, ranges = _search(job, ctx, quantized, artifact.runtime, _exact_trials(job, ctx, target, Path(tmp)))
    float_nodes = _float_nodes(job, ctx, search)
    if ranges is not ctx.ranges or float_nodes:
        artifact = with_choice(target.run_export(replace(ctx, ranges=ranges, float_nodes=frozenset(float_nodes))),
                               weights)
        suite = validate(artifact, ctx.bundle_dir, job)
    return artifact, suite, _shipped(job, search, suite), ranges


def _exact_trials(job, ctx, target, folder: Path):
    """For a target that exports again with its fallback nodes in float: each trial that decides is that export
    (placement, precision and all), so the search measures the graph that ships. Ranking trials stay cheap rewrites."""
    original = onnx.load(str(ctx.fp32_onnx))
    quantizable = _quantizable(job, original)

    def build(float_tensors: list[str], ranges: dict) -> onnx.ModelProto | None:
        nodes = adjacent_nodes(original, float_tensors, quantizable)
        if float_tensors and not quantizable - set(nodes):
            return None
        table = ctx.ranges.with_ranges(ctx.ranges.method, ranges) if ranges else ctx.ranges
        try:
            written = target.write_search_graph(replace(ctx, ranges=table, float_nodes=frozenset(nodes)), folder)
        except UsageError:  # the target's own placement would leave no node quantized
            return None
        return onnx.load(str(written))
    return build


def _shipped(job, search, suite):
    """The search's result with the shipped artifact's numbers on the whole validation set: what the report says
    the search reached is what ships."""
    search.estimate = search.final
    search.final = gate_scores(suite.parity(), suite.metrics())
    search.met = _within(job, suite)
    search.validation_samples = job.validation.samples
    return search


def _within(job, suite) -> bool:
    return all(result["passed"] for result in gate_results(job.config.gates, suite.parity(), suite.metrics()))


def _search(job, ctx, quantized: onnx.ModelProto, runtime: str, build=None):
    from tqdm import tqdm

    original = onnx.load(str(ctx.fp32_onnx))
    candidates = quantized_activations(quantized)
    first = job.validation.batches[0][0]
    macs = {name: value for name, value in macs_by_node(original, ctx.example_shapes, first) if value}
    batches = subsample(job.validation.batches, trial_samples(sum(macs.values()), job.validation.sampler))
    searched = sum(batch_rows(feeds) for feeds, _, _ in batches)
    confirm = job.validation.batches if searched < job.validation.samples else []
    evaluator = Evaluator(quantized, original, batches, job.config.gates, job.task_metrics, runtime,
                          costs=speed_costs(quantized, macs), confirm=confirm, build=build,
                          rank_batches=subsample(batches, RANK_SUBSAMPLE) if searched > RANK_SUBSAMPLE else [],
                          sampler=job.validation.sampler, deadline=time.perf_counter() + 60 * job.config.search_minutes)
    by_method = ranges_by_method(ctx.ranges, job.config.recipe.percentile)
    with tqdm(total=len(candidates), unit="tensor", desc="sensitivity", disable=not job.config.progress,
              file=sys.stderr, leave=False) as bar:
        searching = search_estimated if build is not None else search_budget
        search = searching(evaluator, candidates, by_method, ctx.ranges.method, on_step=lambda: _step(bar))
    search.samples = searched
    search.confirmations = evaluator.confirmations
    search.speed_cost = speed_cost(evaluator.costs, search.float_tensors, macs)
    ranges = ctx.ranges
    if search.range_choice and search.range_choice.ranges:
        ranges = ctx.ranges.with_ranges(search.range_choice.label, search.range_choice.ranges)
    return search, ranges


def _step(bar) -> None:
    """One trial; a search that comes back from the float end takes a second pass over the tensors."""
    if bar.total is not None and bar.n >= bar.total:
        bar.total += bar.total
        bar.refresh()
    bar.update(1)


def _float_nodes(job, ctx, search) -> list[str]:
    """For a target that exports again: the nodes to keep in float so the searched tensors stay float."""
    if not search.float_tensors:
        return []
    original = onnx.load(str(ctx.fp32_onnx))
    quantizable = _quantizable(job, original)
    float_nodes = adjacent_nodes(original, search.float_tensors, quantizable)
    search.float_nodes = float_nodes
    if not quantizable - set(float_nodes):
        # Keeping those tensors in float means keeping every quantizable node in float: not this target.
        search.note = (f"keeping {', '.join(search.float_tensors)} in float would leave no node quantized; "
                       "the artifact keeps every node quantized and misses the budget")
        search.float_tensors, search.float_nodes, search.met = [], [], False
        return []
    return float_nodes


def _quantizable(job, original: onnx.ModelProto) -> set[str]:
    return {node.name for node in original.graph.node if node.op_type in {*op_types(job.config.recipe), "Add"}}
