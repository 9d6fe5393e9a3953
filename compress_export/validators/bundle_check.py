"""`validate` of a network's bundle: the artifact run here on the bundle's reference inputs, the task's metrics
against the original model's outputs recorded at export, the outputs against the artifact's own recorded outputs
(did this machine compute the same?), its analysis, and its speed (beside the FP32 baseline where the bundle
carries one)."""

from __future__ import annotations

from pathlib import Path

from ..bundle.reference_data import FID_FEATURES_FILE
from ..data.array_files import read_arrays
from ..data.calibration_data import LABEL_KEY, batch_rows
from ..data.validation_set import ValidationSet
from ..errors import UsageError
from ..graphs.onnx_io import artifact_bytes, load_graph
from ..metrics import get_metrics
from ..metrics.base import ArtifactProbe, MetricSettings
from ..metrics.tasks import get_task
from ..report.report import Report
from ..report.sampler_section import add_sampler_section
from ..runtimes import open_runner
from ..runtimes.machine import platform_info
from ..samplers import TRAJECTORY, get_sampler
from ..specs import TensorSpec
from .analysis import analysis_warnings, artifact_analysis
from .bench import BenchSettings, latency_in_subprocess, memory_in_subprocess, sampler_loop_in_subprocess
from .cross_machine import differences
from .cross_machine import warnings as cross_machine_warnings
from .evaluate import compare
from .speedup import flat_bench, noise_warnings, ratios

INPUTS, OUTPUTS = "inputs.npz", "outputs.npz"


def check_bundle(folder: Path, manifest: dict, target, limits, bench: BenchSettings | None,
                 require_engine: bool) -> Report:
    features = folder / "reference" / FID_FEATURES_FILE
    settings = MetricSettings(fid_features=str(features) if features.is_file() else None)
    artifact, notes = target.revalidation(dict(manifest["artifact"]), require_engine)
    path = folder / artifact["path"]
    if path.suffix == ".onnx":  # the manifest vouches for the bytes, not that they are a model
        load_graph(path)
    inputs = read_arrays(folder / "reference" / INPUTS)
    outputs = read_arrays(folder / "reference" / OUTPUTS)
    labels = inputs.pop(LABEL_KEY, None)
    specs = [TensorSpec.from_dict(spec) for spec in artifact.get("inputs", [])]
    _check_reference(folder, specs, artifact.get("outputs"), inputs, outputs)
    validation = _reference_batches(inputs, labels, outputs, batch=16)
    validation.sampler = get_sampler(manifest.get("sampler"), folder / "reference")
    task = get_task(manifest.get("task"), outputs)
    try:
        suite = compare(lambda: open_runner(artifact["runtime"], str(path)), validation,
                        get_metrics(task.metrics, settings))
    except UsageError as error:  # the artifact is what the bundle ships: data that does not fit it is the data's fault
        raise UsageError(f"{folder / 'reference' / INPUTS}: {error}") from None
    context = {"bundle": str(folder), "source": manifest.get("source", {}), "task": task.name,
               "machine": platform_info(), "exported_on": manifest.get("platform", {}),
               "data": {"validation": {"samples": validation.samples, "origin": "the bundle's reference/ set"}},
               **{key: artifact[key] for key in ("engine_built", "validated_with") if key in artifact}}
    info = {"path": artifact["path"], "size_bytes": artifact_bytes(path), "sha256": manifest["files"][artifact["path"]],
            "runtime": artifact["runtime"]}
    context["cross_machine"] = differences(folder, lambda: open_runner(artifact["runtime"], str(path)), inputs, specs)
    report = Report.from_suite(manifest["target"], limits, info, suite, context, notes)
    report.warnings += cross_machine_warnings(context["cross_machine"], manifest.get("platform", {}))
    probe = ArtifactProbe(path, artifact["runtime"], None, tuple(validation.batches))
    report.analysis.update(artifact_analysis(probe, task.metrics))
    report.warnings += analysis_warnings(report.analysis)
    if bench is not None:
        sample = {name: value[: max(bench.batches)] for name, value in inputs.items()}
        report.bench = _bench_here(folder, manifest, (artifact["runtime"], path), sample, bench, validation.sampler)
        report.warnings += noise_warnings(report.bench.get("a_a", {}))
    add_sampler_section(report, validation.sampler, None)
    return report


def _check_reference(folder: Path, specs: list[TensorSpec], output_names, inputs: dict, outputs: dict) -> None:
    """The reference arrays name what the artifact takes and gives, and hold the same number of samples."""
    expected = {spec.name for spec in specs}
    if expected and set(inputs) != expected:
        raise UsageError(f"{folder / 'reference' / INPUTS}: holds {', '.join(sorted(inputs)) or 'nothing'}, the "
                         f"artifact takes {', '.join(sorted(expected))}")
    if output_names and set(outputs) - {TRAJECTORY} != set(output_names):
        raise UsageError(f"{folder / 'reference' / OUTPUTS}: holds {', '.join(sorted(outputs)) or 'nothing'}, the "
                         f"artifact gives {', '.join(output_names)}")
    counts = {name: len(value) if value.ndim else 1 for name, value in {**inputs, **outputs}.items()}
    if len(set(counts.values())) > 1:
        raise UsageError(f"{folder / 'reference'}: the arrays hold different numbers of samples ({counts})")


def _bench_here(folder: Path, manifest: dict, model: tuple[str, Path], sample: dict, bench: BenchSettings,
                sampler=None) -> dict:
    """The artifact's latency and memory on this machine; beside its FP32 baseline (and a second copy of it, the
    A/A check) when the bundle carries one (`--with-baseline`), so the speed-up is this device's. A generator's whole
    sampler loop per image too, beside the baseline's where there is one."""
    runtime, path = model
    memory = memory_in_subprocess(runtime, path, sample, bench)
    carried = manifest.get("baseline")
    reference = (carried["runtime"], folder / carried["path"]) if carried else None
    if not carried:
        (by_batch,) = latency_in_subprocess([model], sample, bench)
        result = {"candidate": flat_bench(by_batch, memory, artifact_bytes(path), bench)}
    else:
        base, twin, by_batch = latency_in_subprocess([reference, reference, model], sample, bench)
        result = {"reference": flat_bench(base, memory_in_subprocess(*reference, sample, bench),
                                          artifact_bytes(reference[1]), bench),
                  "candidate": flat_bench(by_batch, memory, artifact_bytes(path), bench),
                  "a_a": {b: stats["p50_ms"] / twin[b]["p50_ms"] for b, stats in base.items() if b in twin},
                  "method": "the bundle's FP32 baseline, a second copy of it and the artifact timed interleaved here"}
        result["ratios"] = ratios(result["reference"], result["candidate"])
    if sampler is not None:
        loop = sampler_loop_in_subprocess([*([reference] if reference else []), model], sample, bench, sampler)
        result["per_image_loop"] = {"candidate": loop[-1], **({"reference": loop[0]} if reference else {}),
                                    "method": "the whole sampler per image, timed here"}
    return result


def _reference_batches(inputs: dict, labels, outputs: dict, batch: int) -> ValidationSet:
    count = batch_rows(inputs)
    batches = []
    for start in range(0, count, batch):
        rows = slice(start, start + batch)
        batches.append(({k: v[rows] for k, v in inputs.items()}, None if labels is None else labels[rows],
                        {k: v[rows] for k, v in outputs.items()}))
    return ValidationSet(batches, "reference")
