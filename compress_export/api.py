"""The Python API behind the CLI: export (pipeline.run), calibrate, validate a bundle, run the demo."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from .bundle import verify_bundle
from .data import LABEL_KEY, batch_rows
from .errors import MissingDependencyError, UsageError
from .pipeline import PipelineConfig, RunResult, ValidationSet, compare, export_fp32, flat_bench, load_source, run
from .ranges import RangeTable
from .report import Report
from .specs import Gates, QuantRecipe, TensorSpec
from .validators.bench import BenchSettings, latency_in_subprocess, memory_in_subprocess
from .validators.runtimes import open_runner

__all__ = ["PipelineConfig", "RunResult", "calibrate", "run", "run_demo", "validate_bundle"]


def calibrate(model: str, out: Path, *, weights: str | None = None, inputs: tuple[TensorSpec, ...] = (),
              trust_pickle: bool = False, calib_data: str | None = None, calib_samples: int | None = None,
              calib_batch: int = 16, random_data: bool = False, recipe: QuantRecipe = QuantRecipe(),
              progress: bool = True) -> RangeTable:
    """Ranges for every tensor the QDQ export would quantize, from all of the calibration data."""
    from .calibrate import calibrate_onnx

    out = Path(out)
    if out.parent and not out.parent.exists():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    config = PipelineConfig(model=model, targets="onnx-int8", out=out.parent, weights=weights, inputs=inputs,
                            trust_pickle=trust_pickle, calib_data=calib_data, calib_samples=calib_samples,
                            calib_batch=calib_batch, random_data=random_data, recipe=recipe, holdout=0.0)
    source = load_source(config)
    with tempfile.TemporaryDirectory(prefix="ce-calibrate-") as tmp:
        data = _calibration_only(config, source.inputs, Path(tmp))
        fp32 = Path(tmp) / "model.fp32.onnx"
        export_fp32(source, fp32, next(data.batches()))
        table = calibrate_onnx(fp32, data, recipe, progress)
    partial = out.with_name(f".{out.name}.partial")
    try:
        table.save(partial)
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UsageError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    return table


def _calibration_only(config: PipelineConfig, specs, work: Path):
    from .data import load_npz_data, random_data

    if config.calib_data:
        return load_npz_data(config.calib_data, specs, config.calib_batch, config.calib_samples)
    if config.random_data:
        return random_data(specs, config.calib_samples or config.random_samples, config.calib_batch, config.seed, work)
    raise UsageError("no calibration data: give --calib-data FILE.npz (or --random-data to use noise)")


def validate_bundle(folder: Path, *, max_accuracy_drop: float | None = None, min_cosine: float | None = None,
                    bench: BenchSettings | None = BenchSettings(), require_engine: bool = False) -> Report:
    """Re-run parity against the bundle's reference outputs (and the benchmark) without the original model.
    A TensorRT bundle runs its engine where TensorRT imports, else its QDQ ONNX in onnxruntime as a proxy."""
    manifest = verify_bundle(folder)
    recorded = manifest["gates"]
    gates = Gates(
        max_accuracy_drop=recorded["max_accuracy_drop"] if max_accuracy_drop is None else max_accuracy_drop,
        min_cosine=recorded["min_cosine"] if min_cosine is None else min_cosine,
    )
    artifact = dict(manifest["artifact"])
    notes = []
    if manifest["target"] == "trt-int8":
        artifact, notes = _tensorrt_or_proxy(artifact, require_engine)
    path = folder / artifact["path"]
    with np.load(folder / "reference" / "inputs.npz") as npz:
        inputs = {key: npz[key] for key in npz.files}
    with np.load(folder / "reference" / "outputs.npz") as npz:
        outputs = {key: npz[key] for key in npz.files}
    labels = inputs.pop(LABEL_KEY, None)
    validation = _reference_batches(inputs, labels, outputs, batch=16)
    parity = compare(lambda: open_runner(artifact["runtime"], str(path)), validation)
    report = Report(
        target=manifest["target"], gates=gates,
        artifact={"path": artifact["path"], "size_bytes": path.stat().st_size,
                  "sha256": manifest["files"][artifact["path"]], "runtime": artifact["runtime"]},
        parity=parity.parity(), metrics=parity.metrics(), top1_agreement=parity.top1_agreement(),
        context={"bundle": str(folder), "source": manifest.get("source", {}),
                 "data": {"validation": {"samples": validation.samples, "origin": "the bundle's reference/ set"}},
                 **{key: artifact[key] for key in ("engine_built", "validated_with") if key in artifact}},
        notes=notes,
    )
    if bench is not None:
        sample = {name: value[: max(bench.batches)] for name, value in inputs.items()}
        (by_batch,) = latency_in_subprocess([(artifact["runtime"], path)], sample, bench)
        memory = memory_in_subprocess(artifact["runtime"], path, sample, bench)
        report.bench = {"candidate": flat_bench(by_batch, memory, path.stat().st_size, bench)}
        recorded_report = folder / "report.json"
        if recorded_report.is_file():
            report.bench["recorded"] = json.loads(recorded_report.read_text()).get("bench", {}).get("candidate")
    return report


def _tensorrt_or_proxy(artifact: dict, require_engine: bool) -> tuple[dict, list[str]]:
    from .exporters.tensorrt.engine import tensorrt_available
    from .exporters.tensorrt.target import MODEL_FILE, PROXY_NOTE

    if artifact["runtime"] == "tensorrt" and tensorrt_available():
        return artifact, []
    if require_engine:
        reason = "tensorrt not installed" if artifact["runtime"] == "tensorrt" else "the bundle has no engine"
        raise MissingDependencyError(f"{reason}: --require-engine needs a TensorRT engine run "
                                     "(build one on the target with compress-export build-engine BUNDLE)")
    proxy = {**artifact, "path": MODEL_FILE, "runtime": "onnxruntime",
             "validated_with": "onnxruntime CPU (proxy for TensorRT)"}
    return proxy, [PROXY_NOTE]


def lint_model(path: Path) -> list:
    """TensorRT rule violations of a QDQ ONNX model (empty when it passes)."""
    from .exporters.tensorrt.lint import lint_for_tensorrt
    from .sources.onnx_source import read_onnx

    if not Path(path).is_file():
        raise UsageError(f"{path}: no such file")
    return lint_for_tensorrt(read_onnx(Path(path)))


def build_engine_for_bundle(folder: Path, max_batch: int = 32, strongly_typed: bool = False) -> dict:
    """Build the TensorRT engine of a trt-int8 bundle on this device and record it in the manifest."""
    from .bundle import write_manifest
    from .exporters.tensorrt.engine import EngineBuildSettings, build_engine, tensorrt_available
    from .exporters.tensorrt.target import ENGINE_FILE, MODEL_FILE, TIMING_CACHE_FILE

    manifest = verify_bundle(folder)
    if manifest["target"] != "trt-int8":
        raise UsageError(f"{folder}: a {manifest['target']} bundle; build-engine takes trt-int8 bundles")
    if not tensorrt_available():
        raise MissingDependencyError("tensorrt not installed: pip install 'compress-export[tensorrt]' on a machine "
                                     "with an NVIDIA GPU (engines are built on the device that runs them)")
    with np.load(folder / "reference" / "inputs.npz") as npz:
        shapes = {key: npz[key].shape for key in npz.files}
    inputs = tuple(TensorSpec.from_dict(spec) for spec in manifest["artifact"]["inputs"])
    partial_engine, partial_cache = folder / f".{ENGINE_FILE}.partial", folder / f".{TIMING_CACHE_FILE}.partial"
    if (folder / TIMING_CACHE_FILE).is_file():
        partial_cache.write_bytes((folder / TIMING_CACHE_FILE).read_bytes())
    try:
        versions = build_engine(folder / MODEL_FILE, partial_engine, partial_cache,
                                EngineBuildSettings(inputs, max_batch, shapes, strongly_typed))
    except BaseException:
        partial_engine.unlink(missing_ok=True)
        partial_cache.unlink(missing_ok=True)
        raise
    partial_engine.replace(folder / ENGINE_FILE)
    partial_cache.replace(folder / TIMING_CACHE_FILE)
    info = {key: value for key, value in manifest.items() if key not in ("files", "libraries", "platform", "schema")}
    info["artifact"] = {**manifest["artifact"], "path": ENGINE_FILE, "runtime": "tensorrt", "engine_built": True,
                        "validated_with": "TensorRT", "tensorrt": versions}
    write_manifest(folder, info)
    return versions


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
