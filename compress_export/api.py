"""The Python API behind the CLI: export (pipeline.run), calibrate, validate a bundle, run the demo."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from .bundle import platform_info, verify_bundle, write_text_atomic
from .data import LABEL_KEY, batch_rows
from .errors import UsageError
from .exporters import get_target
from .job import PipelineConfig, RunResult, ValidationSet
from .metrics import get_metrics
from .metrics.base import ArtifactProbe
from .metrics.gates import Gates
from .metrics.tasks import get_task
from .onnx_io import artifact_bytes
from .pipeline import run
from .ranges import RangeTable
from .report import Report
from .runtimes import open_runner
from .specs import QuantRecipe, TensorSpec
from .stages.benchmark import flat_bench, noise_warnings, ratios
from .stages.prepare import calibration_data, load_source
from .stages.reference import export_fp32
from .stages.target import analyse
from .validators.bench import BenchSettings, latency_in_subprocess, memory_in_subprocess
from .validators.compare import compare
from .validators.cross_machine import differences
from .validators.cross_machine import warnings as cross_machine_warnings

__all__ = ["PipelineConfig", "RunResult", "calibrate", "run", "run_demo", "validate_bundle"]


def calibrate(model: str, out: Path, *, recipe: QuantRecipe = QuantRecipe(), progress: bool = True,
              **source: object) -> RangeTable:
    """Ranges for every tensor the QDQ export would quantize, from all of the calibration data. `source`:
    how to load the model and its data, as PipelineConfig names them (weights, inputs, trust_pickle,
    calib_data, calib_samples, calib_batch, random_data)."""
    from .calibrate import calibrate_onnx

    out = Path(out)
    if out.parent and not out.parent.exists():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    config = PipelineConfig(model=model, targets="", out=out.parent, **source)
    loaded = load_source(config)
    with tempfile.TemporaryDirectory(prefix="ce-calibrate-") as tmp:
        data = calibration_data(config, loaded.inputs, Path(tmp), loaded)
        fp32 = Path(tmp) / "model.fp32.onnx"
        export_fp32(loaded, fp32, next(data.batches()))
        table = calibrate_onnx(fp32, data, recipe, progress)
    try:
        write_text_atomic(out, table.to_json())
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    return table


def validate_bundle(folder: Path, *, bench: BenchSettings | None = BenchSettings(), require_engine: bool = False,
                    **gate_overrides: float | None) -> Report:
    """Re-run the task's metrics against the bundle's reference outputs (and the benchmark) without the
    original model. Gate limits come from the manifest unless overridden (`min_cosine=0.995`, ...). A target
    whose runtime may be missing here (TensorRT) says how to run its artifact instead."""
    manifest = verify_bundle(folder)
    limits = Gates.from_dict(manifest["gates"], **gate_overrides)
    if manifest.get("task") == "text-generation":
        from .llm.validate import validate_language_model

        return validate_language_model(folder, manifest, limits, bench is not None)
    from .metrics.fid_features import use_features
    from .stages.target import FID_FEATURES_FILE

    features = folder / "reference" / FID_FEATURES_FILE
    use_features(str(features) if features.is_file() else None)
    artifact, notes = get_target(manifest["target"]).revalidation(dict(manifest["artifact"]), require_engine)
    path = folder / artifact["path"]
    with np.load(folder / "reference" / "inputs.npz") as npz:
        inputs = {key: npz[key] for key in npz.files}
    with np.load(folder / "reference" / "outputs.npz") as npz:
        outputs = {key: npz[key] for key in npz.files}
    labels = inputs.pop(LABEL_KEY, None)
    validation = _reference_batches(inputs, labels, outputs, batch=16)
    task = get_task(manifest.get("task"), outputs)
    suite = compare(lambda: open_runner(artifact["runtime"], str(path)), validation, get_metrics(task.metrics))
    context = {"bundle": str(folder), "source": manifest.get("source", {}), "task": task.name,
               "machine": platform_info(), "exported_on": manifest.get("platform", {}),
               "data": {"validation": {"samples": validation.samples, "origin": "the bundle's reference/ set"}},
               **{key: artifact[key] for key in ("engine_built", "validated_with") if key in artifact}}
    info = {"path": artifact["path"], "size_bytes": artifact_bytes(path), "sha256": manifest["files"][artifact["path"]],
            "runtime": artifact["runtime"]}
    specs = [TensorSpec.from_dict(spec) for spec in artifact.get("inputs", [])]
    context["cross_machine"] = differences(folder, lambda: open_runner(artifact["runtime"], str(path)), inputs, specs)
    report = Report.from_suite(manifest["target"], limits, info, suite, context, notes)
    report.warnings += cross_machine_warnings(context["cross_machine"], manifest.get("platform", {}))
    analyse(report, ArtifactProbe(path, artifact["runtime"], None, tuple(validation.batches)), task.metrics)
    if bench is not None:
        sample = {name: value[: max(bench.batches)] for name, value in inputs.items()}
        report.bench = _bench_here(folder, manifest, (artifact["runtime"], path), sample, bench)
        report.warnings += noise_warnings(report.bench.get("a_a", {}))
        recorded_report = folder / "report.json"
        if recorded_report.is_file():
            report.bench["recorded"] = json.loads(recorded_report.read_text()).get("bench", {}).get("candidate")
    return report


def _bench_here(folder: Path, manifest: dict, model: tuple[str, Path], sample: dict, bench: BenchSettings) -> dict:
    """The artifact's latency and memory on this machine; beside its FP32 baseline (and a second copy of it, the
    A/A check) when the bundle carries one (`--with-baseline`), so the speed-up is this device's."""
    runtime, path = model
    memory = memory_in_subprocess(runtime, path, sample, bench)
    carried = manifest.get("baseline")
    if not carried:
        (by_batch,) = latency_in_subprocess([model], sample, bench)
        return {"candidate": flat_bench(by_batch, memory, artifact_bytes(path), bench)}
    reference = (carried["runtime"], folder / carried["path"])
    base, twin, by_batch = latency_in_subprocess([reference, reference, model], sample, bench)
    result = {"reference": flat_bench(base, memory_in_subprocess(*reference, sample, bench),
                                      artifact_bytes(reference[1]), bench),
              "candidate": flat_bench(by_batch, memory, artifact_bytes(path), bench),
              "a_a": {b: stats["p50_ms"] / twin[b]["p50_ms"] for b, stats in base.items() if b in twin},
              "method": "the bundle's FP32 baseline, a second copy of it and the artifact timed interleaved here"}
    result["ratios"] = ratios(result["reference"], result["candidate"])
    return result


def build_engine_for_bundle(folder: Path, max_batch: int = 32, flags=None) -> dict:
    """Build the TensorRT engine of a trt-int8 bundle on this device and record it in the manifest.
    `flags`: an exporters.tensorrt.options.EngineFlags (strongly typed by default)."""
    from .exporters.tensorrt.bundle_engine import build_engine_for_bundle as build
    from .exporters.tensorrt.options import EngineFlags

    return build(folder, max_batch, flags or EngineFlags())


def lint_model(path: Path, float_precision: str | None = None, sparsity: str | None = None) -> list:
    """TensorRT rule violations of a QDQ ONNX model (empty when it passes); `float_precision="fp16"` also
    flags compute layers left FP32, `sparsity="2:4"` weights off the 2:4 pattern."""
    from .exporters.tensorrt.lint import lint_for_tensorrt
    from .sources.onnx_source import read_onnx

    if not Path(path).is_file():
        raise UsageError(f"{path}: no such file")
    return lint_for_tensorrt(read_onnx(Path(path)), float_precision, sparsity)


def _reference_batches(inputs: dict, labels, outputs: dict, batch: int) -> ValidationSet:
    count = batch_rows(inputs)
    batches = []
    for start in range(0, count, batch):
        rows = slice(start, start + batch)
        batches.append(({k: v[rows] for k, v in inputs.items()}, None if labels is None else labels[rows],
                        {k: v[rows] for k, v in outputs.items()}))
    return ValidationSet(batches, "reference")


def run_demo(out: Path, *, targets: str = "onnx,onnx-int8,onnx-dynamic", calibrator: str = "entropy",
             bench: BenchSettings | None = BenchSettings(), progress: bool = True) -> RunResult:
    """The bundled digits CNN through the whole pipeline, on digits it was not trained on."""
    from .bundle import ensure_writable
    from .demo.data import write_demo_data

    out = Path(out)
    ensure_writable(out)
    calib, val = write_demo_data(out / "data")
    config = PipelineConfig(
        model="compress_export.demo.model:digits_cnn", targets=targets, out=out, calib_data=str(calib),
        val_data=str(val), recipe=QuantRecipe(method=calibrator), bench=bench, progress=progress,
    )
    return run(config)
