"""The Python API behind the CLI: export (pipeline.run), calibrate, validate a bundle, run the demo."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .bundle.manifest import verify_bundle
from .bundle.writer import write_text_atomic
from .calibration.range_table import RangeTable
from .data.run_data import calibration_data
from .errors import UsageError
from .exporters import get_target
from .exporters.onnx.fp32 import export_fp32
from .job import PipelineConfig, RunResult
from .metrics.gates import Gates
from .pipeline import run
from .report.report import Report
from .sources.loader import load_source
from .specs import QuantRecipe
from .util.lazy import resolve
from .validators.bench import BenchSettings

__all__ = ["PipelineConfig", "RunResult", "calibrate", "run", "run_demo", "validate_bundle"]


def calibrate(model: str, out: Path, *, recipe: QuantRecipe = QuantRecipe(), progress: bool = True,
              **source: object) -> RangeTable:
    """Ranges for every tensor the QDQ export would quantize, from all of the calibration data. `source`:
    how to load the model and its data, as PipelineConfig names them (weights, inputs, trust_pickle,
    calib_data, calib_samples, calib_batch, random_data)."""
    from .calibration.calibrate import calibrate_onnx

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
    """Re-check a bundle without the original model: its hashes, then its artifact measured again here against the
    reference data it carries (the task family's checks), and its speed. Gate limits come from the manifest unless
    overridden (`min_cosine=0.995`, ...). A target whose runtime may be missing here (TensorRT) says how to run its
    artifact instead."""
    from .metrics.tasks import TASKS

    manifest = verify_bundle(folder)
    limits = Gates.from_dict(manifest["gates"], **gate_overrides)
    task = TASKS.get(manifest.get("task"))
    family = task.family if task is not None else "tensor"
    target = get_target(manifest["target"], family)
    report = resolve(BUNDLE_CHECKS[family])(Path(folder), manifest, target, limits, bench, require_engine)
    recorded_report = Path(folder) / "report.json"
    if report.bench is not None and recorded_report.is_file():
        report.bench["recorded"] = json.loads(recorded_report.read_text()).get("bench", {}).get("candidate")
    return report


# How each task family measures a bundle's artifact again: "module:function(folder, manifest, target, limits, bench,
# require_engine) -> Report".
BUNDLE_CHECKS = {
    "tensor": "compress_export.validators.bundle_check:check_bundle",
    "generation": "compress_export.validators.bundle_check_generation:check_bundle",
}


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


def run_demo(out: Path, *, targets: str = "onnx,onnx-int8,onnx-dynamic", calibrator: str = "entropy",
             bench: BenchSettings | None = BenchSettings(), progress: bool = True) -> RunResult:
    """The bundled digits CNN through the whole pipeline, on digits it was not trained on."""
    from .bundle.writer import ensure_writable
    from .demo.data import write_demo_data

    out = Path(out)
    ensure_writable(out)
    calib, val = write_demo_data(out / "data")
    config = PipelineConfig(
        model="compress_export.demo.model:digits_cnn", targets=targets, out=out, calib_data=str(calib),
        val_data=str(val), recipe=QuantRecipe(method=calibrator), bench=bench, progress=progress,
    )
    return run(config)
