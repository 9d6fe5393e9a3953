"""The whole job: load, export FP32 ONNX, calibrate once, export every target, validate, write bundles."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from . import __version__
from .bundle import BundleWriter, ensure_writable, write_manifest
from .calibrate import calibrate_onnx, ranges_by_method
from .data import LABEL_KEY, CalibrationData, batch_rows, infer_specs, load_npz_data, random_data
from .errors import ExportError, UsageError
from .exporters import ExportContext, Target, TrtOptions, parse_targets
from .graph import COMPUTE_OPS, op_types, select_nodes, with_inferred_shapes
from .hashing import sha256_file
from .qat import QatSettings, plot_losses
from .ranges import RangeTable
from .report import Report, plot_tradeoff
from .sensitivity import (
    Evaluator,
    adjacent_nodes,
    plot_sensitivity,
    quantized_activations,
    search_budget,
    subsample,
)
from .sources import LoadedModel, load_model
from .specs import Gates, QuantRecipe, TensorSpec
from .validators.bench import BenchSettings, latency_in_subprocess, memory_in_subprocess
from .validators.parity import ParityAccumulator
from .validators.runtimes import open_runner

log = logging.getLogger(__name__)
REFERENCE_MAX_SAMPLES = 256
REFERENCE_MAX_BYTES = 8 << 20
EXPORT_MIN_COSINE = 0.999


@dataclass(frozen=True)
class PipelineConfig:
    model: str
    targets: str
    out: Path
    weights: str | None = None
    inputs: tuple[TensorSpec, ...] = ()
    trust_pickle: bool = False
    calib_data: str | None = None
    calib_samples: int | None = None
    calib_batch: int = 16
    val_data: str | None = None
    holdout: float = 0.2
    random_data: bool = False
    random_samples: int = 64
    ranges_from: str | None = None
    ranges_from_cache: str | None = None
    trt: TrtOptions = field(default_factory=TrtOptions)
    recipe: QuantRecipe = field(default_factory=QuantRecipe)
    gates: Gates = field(default_factory=Gates)
    bench: BenchSettings | None = field(default_factory=BenchSettings)
    seed: int = 0
    progress: bool = True
    fallback: bool = True
    tflite_io: str = "int8"
    qat: QatSettings | None = None
    train_data: str | None = None


@dataclass
class RunResult:
    reports: list[Report]
    bundles: list[Path]

    @property
    def exit_code(self) -> int:
        return max((report.exit_code for report in self.reports), default=0)

    def summary(self) -> dict:
        return {
            "passed": all(report.passed for report in self.reports),
            "exit_code": self.exit_code,
            "targets": [
                {"target": report.target, "passed": report.passed, "bundle": str(bundle), "report": report.to_dict()}
                for report, bundle in zip(self.reports, self.bundles, strict=True)
            ],
        }


@dataclass
class ValidationSet:
    """Held-out batches with the original model's outputs, computed once per run."""

    batches: list[tuple[dict[str, np.ndarray], np.ndarray | None, dict[str, np.ndarray]]]
    origin: str

    @property
    def samples(self) -> int:
        return sum(batch_rows(feeds) for feeds, _, _ in self.batches)


def load_source(config: PipelineConfig) -> LoadedModel:
    data_path = config.calib_data or config.val_data
    carries_specs = Path(config.model).suffix in (".onnx", ".pt2", ".keras", ".h5", ".hdf5")
    data_specs = infer_specs(data_path) if data_path and not config.inputs and not carries_specs else ()
    model = load_model(config.model, weights=config.weights, inputs=config.inputs, data_specs=data_specs,
                       trust_pickle=config.trust_pickle)
    if config.inputs and model.framework == "onnx":
        log.info("--input ignored: the ONNX file declares its inputs")
    return model


def prepare_data(config: PipelineConfig, specs: tuple[TensorSpec, ...], work: Path
                 ) -> tuple[CalibrationData, CalibrationData, str]:
    if config.calib_data:
        calib = load_npz_data(config.calib_data, specs, config.calib_batch, config.calib_samples)
    elif config.random_data:
        calib = random_data(specs, config.calib_samples or config.random_samples, config.calib_batch, config.seed,
                            work / "random")
    else:
        raise UsageError("no calibration data: give --calib-data FILE.npz (or --random-data to use noise)")
    if config.val_data:
        val = load_npz_data(config.val_data, specs, config.calib_batch)
        return calib, val, f"--val-data {config.val_data}"
    if len(calib) < 2:
        raise UsageError("need at least 2 samples to hold some out for validation; give --val-data")
    calib, val = calib.split(config.holdout, config.seed)
    origin = f"held out {config.holdout:.0%} of the calibration data (seed {config.seed}), not used to calibrate"
    return calib, val, origin


def export_fp32(model: LoadedModel, path: Path, example: dict[str, np.ndarray]) -> None:
    model.export_onnx(path, example)
    graph = onnx.load(str(path))
    _name_unnamed_nodes(graph)
    try:
        onnx.checker.check_model(graph)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported ONNX model is invalid: {str(exc).splitlines()[0]}") from None
    onnx.save_model(graph, str(path))


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


def reference_outputs(model: LoadedModel, val: CalibrationData, origin: str, progress: bool) -> ValidationSet:
    from tqdm import tqdm

    batches = []
    with model.reference_runner() as runner, tqdm(total=len(val), unit="sample", desc="reference outputs",
                                                  disable=not progress, file=sys.stderr, leave=False) as bar:
        for batch in val.batches(labels=True):
            labels = batch.pop(LABEL_KEY, None)
            batches.append((batch, labels, runner.infer(batch)))
            bar.update(batch_rows(batch))
    return ValidationSet(batches, origin)


def compare(runner_factory, validation: ValidationSet) -> ParityAccumulator:
    accumulator = None
    with runner_factory() as runner:
        for feeds, labels, expected in validation.batches:
            produced = _by_reference_names(runner.infer(feeds), list(expected))
            accumulator = accumulator or ParityAccumulator(list(expected))
            accumulator.update(expected, produced, labels)
    return accumulator


def _by_reference_names(produced: dict, names: list[str]) -> dict:
    """The artifact's outputs under the original model's names: by name, or by position where the format
    renames them (a TFLite signature calls them output_0, output_1, ...)."""
    if all(name in produced for name in names):
        return produced
    if len(produced) == len(names):
        return dict(zip(names, produced.values(), strict=True))
    missing = [name for name in names if name not in produced]
    raise ExportError(f"the artifact lacks output(s) {', '.join(missing)}")


def check_export(fp32: Path, validation: ValidationSet) -> dict:
    first = ValidationSet(validation.batches[:1], validation.origin)
    parity = compare(lambda: open_runner("onnxruntime", str(fp32)), first).parity()
    worst = min(stats["cosine"] for stats in parity.values())
    if not worst >= EXPORT_MIN_COSINE:
        raise ExportError(f"the FP32 ONNX export disagrees with the original model (cosine {worst:.4f})")
    return parity


def bench_sample(validation: ValidationSet, settings: BenchSettings) -> dict[str, np.ndarray]:
    feeds = validation.batches[0][0]
    return {name: value[: max(settings.batches)] for name, value in feeds.items()}


def run(config: PipelineConfig) -> RunResult:
    targets = parse_targets(config.targets)
    out = Path(config.out)
    ensure_writable(out)
    model = load_source(config)
    with tempfile.TemporaryDirectory(prefix=".ce-work-", dir=out) as tmp:
        work = Path(tmp)
        calib, val, origin = prepare_data(config, model.inputs, work)
        fp32 = work / "model.fp32.onnx"
        onnx_targets = [target for target in targets if target.consumes == "onnx"]
        if onnx_targets:
            export_fp32(model, fp32, next(calib.batches()))
        validation = reference_outputs(model, val, origin, config.progress)
        export_parity = check_export(fp32, validation) if onnx_targets else None
        ranges = _ranges(config, onnx_targets, fp32, calib)
        qat, train = None, calib
        if config.train_data:
            train = load_npz_data(config.train_data, model.inputs, config.calib_batch)
        if config.qat is not None:
            qat = _quantization_aware(config, model, fp32, ranges, train, calib, work, targets)
        bench = None
        if config.bench is not None:
            bench = Benchmarker(config.bench, validation, len(targets), config.progress)
        context = {
            "source": model.describe(),
            "data": {"calibration": calib.describe(), "validation": {**val.describe(), "origin": origin}},
            "recipe": config.recipe.to_dict(),
            "export_check": export_parity,
            "compress_export_version": __version__,
        }
        if ranges is not None:
            context["calibration"] = {"method": ranges.method, "tensors": len(ranges.ranges), "skipped": ranges.skipped}
        reports, bundles, references = [], [], {}
        for target in targets:
            bundle = out / target.name
            quantize_from = qat.fp32 if qat and target.needs_ranges else fp32
            ctx = ExportContext(quantize_from, model.inputs, tuple(validation.batches[0][2]), config.recipe, ranges,
                                bundle,
                                config.trt, {name: value.shape for name, value in validation.batches[0][0].items()},
                                source=model, calibration=calib, tflite_io=config.tflite_io,
                                qat=config.qat if model.framework == "keras" else None, train=train)
            if qat and target.needs_ranges:
                ctx = replace(ctx, ranges=qat.ranges)
            report = _build_bundle(config, target, ctx, validation, bench, context,
                                   _reference(target, replace(ctx, fp32_onnx=fp32), work / "reference", references),
                                   qat if target.needs_ranges else None, fp32, ranges)
            reports.append(report)
            bundles.append(bundle)
        if bench:
            bench.close()
    result = RunResult(reports, bundles)
    (out / "summary.json").write_text(json.dumps(result.summary(), indent=2) + "\n")
    _plot_summary(reports, out / "tradeoff.png")
    return result


def _ranges(config: PipelineConfig, targets: list[Target], fp32: Path, calib: CalibrationData) -> RangeTable | None:
    if not any(target.needs_ranges for target in targets):
        return None
    if config.ranges_from:
        return _checked_ranges(RangeTable.load(config.ranges_from), config.ranges_from, fp32, config.recipe)
    if config.ranges_from_cache:
        try:
            text = Path(config.ranges_from_cache).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--ranges-from-cache {config.ranges_from_cache}: cannot read ({exc})") from None
        table = RangeTable.from_trt_cache(text, config.ranges_from_cache)
        return _checked_ranges(table, config.ranges_from_cache, fp32, config.recipe)
    return calibrate_onnx(fp32, calib, config.recipe, config.progress)


def _checked_ranges(table: RangeTable, path: str, fp32: Path, recipe: QuantRecipe) -> RangeTable:
    """A range table given by the user must cover the activation input of every compute op."""
    graph = with_inferred_shapes(onnx.load(str(fp32), load_external_data=False))
    compute = QuantRecipe(include_ops=COMPUTE_OPS, exclude_ops=recipe.exclude_ops, exclude_nodes=recipe.exclude_nodes)
    constants = {init.name for init in graph.graph.initializer}
    needed = [node.input[0] for node in select_nodes(graph, compute) if node.input[0] not in constants]
    missing = [name for name in needed if name not in table.ranges and name not in table.skipped]
    if missing:
        raise UsageError(f"{path}: no range for {len(missing)} of the {len(needed)} tensors this model "
                         f"quantizes (first: {', '.join(missing[:3])}); was it calibrated on another model?")
    return table


class Benchmarker:
    """Each artifact timed side by side with the FP32 reference in one process, its peak RSS in another."""

    def __init__(self, settings: BenchSettings, validation: ValidationSet, count: int, progress: bool):
        from tqdm import tqdm

        self.settings = settings
        self.sample = bench_sample(validation, settings)
        self.reference_memory: dict[Path, dict] = {}
        self.bar = tqdm(total=count, unit="artifact", desc="benchmarking", disable=not progress, file=sys.stderr,
                        leave=False)

    def compare(self, runtime: str, path: Path, reference_model: tuple[str, Path]) -> dict:
        """`reference_model`: the FP32 model in the candidate's runtime, (runtime, path)."""
        reference_runtime, reference_path = reference_model
        reference, candidate = latency_in_subprocess([reference_model, (runtime, path)], self.sample, self.settings)
        if reference_path not in self.reference_memory:
            self.reference_memory[reference_path] = memory_in_subprocess(reference_runtime, reference_path,
                                                                         self.sample, self.settings)
        candidate_memory = memory_in_subprocess(runtime, path, self.sample, self.settings)
        self.bar.update(1)
        result = {
            "reference": flat_bench(reference, self.reference_memory[reference_path], reference_path.stat().st_size,
                                    self.settings),
            "candidate": flat_bench(candidate, candidate_memory, path.stat().st_size, self.settings),
            "method": "reference and candidate timed interleaved in one process; peak RSS each in its own",
        }
        result["ratios"] = _ratios(result["reference"], result["candidate"])
        return result

    def close(self) -> None:
        self.bar.close()


def flat_bench(by_batch: dict, memory: dict, size_bytes: int, settings: BenchSettings) -> dict:
    """The first batch size's numbers at the top level, every batch size under `by_batch`."""
    first = by_batch[str(settings.batches[0])]
    return {**first, "batch": settings.batches[0], "by_batch": by_batch, **memory, "size_bytes": size_bytes}


def _ratios(reference: dict, candidate: dict) -> dict:
    ratios = {"size": candidate["size_bytes"] / reference["size_bytes"],
              "peak_rss": candidate["peak_rss_mb"] / reference["peak_rss_mb"]}
    for batch, stats in candidate["by_batch"].items():
        base = reference["by_batch"].get(batch)
        if base:
            ratios[f"speedup_p50_batch{batch}"] = base["p50_ms"] / stats["p50_ms"]
    return ratios


@dataclass
class QatOutcome:
    fp32: Path
    ranges: RangeTable
    losses: list[float]
    summary: dict


def _quantization_aware(config: PipelineConfig, model: LoadedModel, fp32: Path, ranges: RangeTable | None,
                        train: CalibrationData, calib: CalibrationData, work: Path, targets: list[Target]
                        ) -> QatOutcome | None:
    """Fine-tune the fake-quantized model against the original, export it, and range-table it: learned
    ranges where fake-quant sat, a fresh calibration of the fine-tuned graph elsewhere."""
    from tqdm import tqdm

    from .qat import fine_tune, match_inputs
    from .sources.torch_source import TorchModel, differentiable_forward

    onnx_ranged = [target.name for target in targets if target.needs_ranges]
    if model.framework == "keras":
        if onnx_ranged:
            raise UsageError(f"--qat for Keras models applies to tflite-int8, not to {', '.join(onnx_ranged)}")
        return None  # the tflite-int8 target fine-tunes the Keras model itself
    if model.framework != "torch" or getattr(model, "exported", None) is not None:
        raise UsageError("--qat fine-tunes a PyTorch nn.Module or a Keras model: give a factory (file.py:factory), "
                         f"not a {model.framework if model.framework != 'torch' else '.pt2'} model")
    if ranges is None:
        raise UsageError("--qat for PyTorch models applies to onnx-int8 and trt-int8 (tflite-int8 takes QAT from "
                         "Keras models)")
    forward = differentiable_forward(model)
    sample = next(calib.batches())
    matched = match_inputs(model.module, fp32, list(ranges.ranges), sample, forward)
    total = config.qat.steps or config.qat.epochs * sum(1 for _ in train.batches())
    with tqdm(total=total, unit="step", desc="QAT", disable=not config.progress, file=sys.stderr, leave=False) as bar:
        student, result = fine_tune(model.module, forward, matched, ranges, train, config.qat,
                                    on_step=lambda loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.4g}")))
    tuned = TorchModel(student, model.description, model.sha256, model.inputs)
    qat_fp32 = work / "model.qat.onnx"
    export_fp32(tuned, qat_fp32, sample)
    table = calibrate_onnx(qat_fp32, calib, config.recipe, progress=False)
    renamed = match_inputs(student, qat_fp32, list(table.ranges), sample, forward)
    learned = {renamed[name]: result.ranges[tensor] for name, tensor in matched.items()
               if name in renamed and tensor in result.ranges}
    summary = {**result.to_dict(config.qat), "train_data": _train_origin(config),
               "labels": train.has_labels, "learned_ranges": len(learned)}
    return QatOutcome(qat_fp32, table.with_ranges(f"qat+{table.method}", learned), result.losses, summary)


def _train_origin(config: PipelineConfig) -> str:
    return config.train_data or "the calibration data"


def _ptq_side(target: Target, ctx: ExportContext, validation: ValidationSet) -> dict:
    """The same target quantized from the original model with the calibrator's ranges (`ctx` says how):
    what QAT is compared with."""
    with tempfile.TemporaryDirectory(prefix="ce-ptq-") as tmp:
        folder = Path(tmp)
        artifact = target.export(replace(ctx, bundle_dir=folder))
        parity = compare(lambda: open_runner(artifact.runtime, str(folder / artifact.path)), validation)
        return {"parity": parity.parity(), "metrics": parity.metrics(),
                "size_bytes": (folder / artifact.path).stat().st_size}


def _reference(target: Target, ctx: ExportContext, folder: Path, made: dict):
    """The FP32 model a target is timed against, in the target's own runtime: a callable, so that it is
    made only when the benchmark runs, and once per run (`made` is the run's cache)."""

    def make() -> tuple[str, Path]:
        if target.consumes == "onnx":
            return "onnxruntime", ctx.fp32_onnx
        if "tflite" not in made:
            from .exporters import get_target

            fp32_dir = folder / "tflite"
            fp32_dir.mkdir(parents=True, exist_ok=True)
            artifact = get_target("tflite").export(replace(ctx, bundle_dir=fp32_dir))
            made["tflite"] = (artifact.runtime, fp32_dir / artifact.path)
        return made["tflite"]

    return make


def _build_bundle(config, target, ctx: ExportContext, validation, bench, context, reference, qat=None,
                  original_fp32: Path | None = None, ptq_ranges: RangeTable | None = None) -> Report:
    model, fp32 = ctx.source, ctx.fp32_onnx
    with BundleWriter(ctx.bundle_dir) as folder:
        ctx = replace(ctx, bundle_dir=folder)
        artifact, parity, search, ranges = _export_within_budget(config, target, ctx, validation)
        artifact_path = folder / artifact.path
        report = Report(
            target=target.name,
            gates=config.gates,
            artifact={"path": artifact.path, "size_bytes": artifact_path.stat().st_size,
                      "sha256": sha256_file(artifact_path), "runtime": artifact.runtime},
            parity=parity.parity(), metrics=parity.metrics(), top1_agreement=parity.top1_agreement(),
            context={**context, **artifact.details}, notes=list(artifact.notes),
        )
        if qat is not None:
            ptq_ctx = replace(ctx, fp32_onnx=original_fp32, ranges=ptq_ranges, float_nodes=frozenset())
            report.context["qat"] = {**qat.summary, "ptq": _ptq_side(target, ptq_ctx, validation)}
            plot_losses(qat.losses, folder / "qat_loss.png")
        elif "qat" in artifact.details:
            report.context["qat"] = {**artifact.details["qat"], "train_data": _train_origin(config),
                                     "ptq": _ptq_side(target, replace(ctx, qat=None), validation)}
        elif config.qat is not None and target.name == "tflite-int8":
            report.warnings.append("--qat was not applied to this target: PyTorch models get QAT on onnx-int8 and "
                                   "trt-int8, Keras models on tflite-int8; this artifact is post-training quantized")
        if search is not None:
            report.sensitivity = search.to_dict()
            if search.ranking:
                plot_sensitivity(search.ranking, folder / "sensitivity.png")
        if context["data"]["calibration"]["synthetic"]:
            report.warnings.append("calibrated on random data (--random-data): ranges do not reflect real inputs")
        if bench is not None:
            report.bench = bench.compare(artifact.runtime, artifact_path, reference())
            slow = _speed_warnings(target.name, report.bench["ratios"])
            report.warnings += slow
            if slow and artifact.runtime == "onnxruntime":
                from .validators.fusion import fusion_summary, slow_causes

                report.context["fusion"] = fusion_summary(artifact_path)
                report.warnings += [f"likely cause: {cause}" for cause in slow_causes(report.context["fusion"])]
        if ranges is not None and target.needs_ranges:
            ranges.save(folder / "ranges.json")
        _write_reference(folder, validation)
        _write_reports(folder, report)
        write_manifest(folder, {
            "target": target.name,
            "artifact": {"path": artifact.path, "runtime": artifact.runtime,
                         "inputs": [spec.to_dict() for spec in artifact.inputs], "outputs": list(artifact.outputs),
                         **artifact.details},
            "source": model.describe(),
            "fp32_onnx_sha256": sha256_file(fp32) if fp32.is_file() else None,
            "data": context["data"],
            "recipe": config.recipe.to_dict(),
            "gates": config.gates.to_dict(),
            "seed": config.seed,
            "compress_export_version": __version__,
        })
    return report


def _export_within_budget(config: PipelineConfig, target: Target, ctx: ExportContext, validation: ValidationSet):
    """Export; when a quantized artifact misses the quality budget, try other calibrators' ranges, then
    keep the most sensitive nodes in float until it holds (unless --no-fallback), and export again.
    Returns the artifact, its parity, the search (or None) and the ranges it was built with."""
    artifact = target.export(ctx)
    path = ctx.bundle_dir / artifact.path
    parity = compare(lambda: open_runner(artifact.runtime, str(path)), validation)
    searchable = target.needs_ranges and config.fallback and artifact.runtime == "onnxruntime"
    if not searchable or _within(parity, config.gates):
        return artifact, parity, None, ctx.ranges
    from tqdm import tqdm

    quantized, original = onnx.load(str(path)), onnx.load(str(ctx.fp32_onnx))
    candidates = quantized_activations(quantized)
    evaluator = Evaluator(quantized, original, subsample(validation.batches), config.gates)
    by_method = ranges_by_method(ctx.ranges, config.recipe.percentile)
    with tqdm(total=len(candidates), unit="tensor", desc="sensitivity", disable=not config.progress,
              file=sys.stderr, leave=False) as bar:
        search = search_budget(evaluator, candidates, by_method, ctx.ranges.method, on_step=lambda: bar.update(1))
    search.samples = sum(batch_rows(feeds) for feeds, _, _ in evaluator.batches)
    ranges = ctx.ranges
    if search.range_choice and search.range_choice.ranges:
        ranges = ctx.ranges.with_ranges(search.range_choice.label, search.range_choice.ranges)
    float_nodes: list[str] = []
    if search.float_tensors:
        quantizable = {node.name for node in original.graph.node
                       if node.op_type in {*op_types(config.recipe), "Add"}}
        float_nodes = adjacent_nodes(original, search.float_tensors, quantizable)
        search.float_nodes = float_nodes
    if ranges is not ctx.ranges or float_nodes:
        artifact = target.export(replace(ctx, ranges=ranges, float_nodes=frozenset(float_nodes)))
        parity = compare(lambda: open_runner(artifact.runtime, str(path)), validation)
    return artifact, parity, search, ranges


def _within(parity: ParityAccumulator, gates: Gates) -> bool:
    return Report("", gates, {}, parity=parity.parity(), metrics=parity.metrics()).passed


def _speed_warnings(target: str, ratios: dict) -> list[str]:
    warnings = []
    if target in ("onnx", "tflite"):  # the FP32 reference itself
        return warnings
    for key, value in ratios.items():
        if key.startswith("speedup_p50_batch") and value < 1.0:
            batch = key.removeprefix("speedup_p50_batch")
            warnings.append(f"not faster than FP32 at batch {batch} (p50 speedup {value:.2f}x)")
    return warnings


def _write_reference(folder: Path, validation: ValidationSet) -> None:
    """Held-out inputs with the original model's outputs, for `validate` without the model.
    Only batches shaped like the first are kept, so that they stack into one array per name."""
    inputs: dict[str, list] = {}
    outputs: dict[str, list] = {}
    first_shapes = {name: value.shape[1:] for name, value in validation.batches[0][0].items()}
    taken, size = 0, 0
    for feeds, labels, expected in validation.batches:
        if {name: value.shape[1:] for name, value in feeds.items()} != first_shapes:
            continue
        rows = min(batch_rows(feeds), REFERENCE_MAX_SAMPLES - taken)
        if rows <= 0 or size >= REFERENCE_MAX_BYTES:
            break
        for name, value in feeds.items():
            inputs.setdefault(name, []).append(value[:rows])
        if labels is not None:
            inputs.setdefault(LABEL_KEY, []).append(labels[:rows])
        for name, value in expected.items():
            outputs.setdefault(name, []).append(value[:rows])
            size += value[:rows].nbytes
        taken += rows
    (folder / "reference").mkdir()
    np.savez(folder / "reference" / "inputs.npz", **{k: np.concatenate(v) for k, v in inputs.items()})
    np.savez(folder / "reference" / "outputs.npz", **{k: np.concatenate(v) for k, v in outputs.items()})


def _write_reports(folder: Path, report: Report) -> None:
    (folder / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (folder / "report.md").write_text(report.to_markdown())
    points, batch = _tradeoff_points([report])
    if points:
        plot_tradeoff(points, report.quality()[0], folder / "tradeoff.png", batch)


def _tradeoff_points(reports: list[Report]) -> tuple[list[tuple[str, float, float]], str]:
    """(label, p50 relative to FP32, quality) per target at the largest benchmarked batch, and that batch."""
    points, batch = [], ""
    for report in reports:
        label, ref_quality, cand_quality = report.quality()
        bench = report.bench
        if not bench or cand_quality is None:
            continue
        batch = str(max(int(b) for b in bench["candidate"]["by_batch"]))
        if not points:
            points.append(("FP32", 1.0, ref_quality))
        # Each target is timed interleaved with its own FP32 run: the ratio is the comparable quantity.
        relative = bench["candidate"]["by_batch"][batch]["p50_ms"] / bench["reference"]["by_batch"][batch]["p50_ms"]
        points.append((report.target, relative, cand_quality))
    return points, batch


def _plot_summary(reports: list[Report], path: Path) -> None:
    points, batch = _tradeoff_points(reports)
    if points:
        plot_tradeoff(points, reports[0].quality()[0], path, batch)
