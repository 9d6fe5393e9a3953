"""tflite, tflite-fp16, tflite-dynamic, tflite-int8 from a Keras model; INT8 ranges from our calibrators."""

from __future__ import annotations

from ...errors import ExportError
from ...runtimes.litert import io_description
from ...specs import Artifact
from ..registry import ExportContext
from .convert import convert_keras

MODEL_FILE = "model.tflite"


def _framework(ctx: ExportContext) -> str:
    framework = getattr(ctx.source, "framework", None)
    if framework not in ("keras", "torch"):
        raise ExportError(f"the TFLite targets take Keras (.keras, .h5) and PyTorch models; this model is {framework}")
    return framework


def _keras_model(ctx: ExportContext):
    from .keras_ranges import as_functional

    return as_functional(ctx.source.model)


def _torch_module(ctx: ExportContext):
    exported = getattr(ctx.source, "exported", None)
    return exported.module() if exported is not None else ctx.source.module


def _names(ctx: ExportContext) -> list[str]:
    return [spec.name for spec in ctx.inputs]


def _first_batch(ctx: ExportContext) -> dict:
    if ctx.calibration is None:
        raise ExportError("the TFLite targets of a PyTorch model need sample inputs (--calib-data)")
    return next(ctx.calibration.batches())


def _write(ctx: ExportContext, target: str, blob: bytes, notes: list[str], details: dict | None = None) -> Artifact:
    path = ctx.bundle_dir / MODEL_FILE
    path.write_bytes(blob)
    io = io_description(str(path))
    keras = ctx.source.framework == "keras"
    image_like = any(len(spec["shape"]) == 4 for spec in io["inputs"].values())
    layout = ("NHWC" if keras else "NCHW") if image_like else "as the source"
    origin = "the Keras model's own" if keras else "as the PyTorch model; litert-torch keeps it"
    described = ", ".join(f"{name} {spec['dtype']} {spec['shape']}" for name, spec in io["inputs"].items())
    notes.append(f"inputs: {described} (layout {layout}, {origin})")
    notes.append("outputs: " + ", ".join(f"{name} {spec['dtype']}" for name, spec in io["outputs"].items()))
    return Artifact(target, MODEL_FILE, ctx.inputs, ctx.outputs, "litert", tuple(notes),
                    {"tflite_io": io, "input_layout": layout, "converter": _converter(ctx), **(details or {})})


def _batch_note(dynamic: bool) -> list[str]:
    if dynamic:
        return []
    return ["batch fixed at 1: litert-torch could not lower a dynamic batch for this model; larger batches run "
            "one sample at a time"]


def _converter(ctx: ExportContext) -> str:
    return "tf.lite.TFLiteConverter" if ctx.source.framework == "keras" else "litert-torch"


def export_tflite(ctx: ExportContext) -> Artifact:
    if _framework(ctx) == "torch":
        from .torch_convert import convert_float

        blob, dynamic = convert_float(_torch_module(ctx), _first_batch(ctx), _names(ctx))
        return _write(ctx, "tflite", blob, _batch_note(dynamic))
    return _write(ctx, "tflite", convert_keras(_keras_model(ctx), "fp32"), [])


def export_tflite_fp16(ctx: ExportContext) -> Artifact:
    if _framework(ctx) == "torch":
        raise ExportError("tflite-fp16 takes Keras models: litert-torch has no FP16-weight mode")
    return _write(ctx, "tflite-fp16", convert_keras(_keras_model(ctx), "fp16"), ["FP16 weights, FP32 compute"])


def export_tflite_dynamic(ctx: ExportContext) -> Artifact:
    notes = ["INT8 weights; activations quantized at run time"]
    if _framework(ctx) == "torch":
        from .torch_convert import convert_dynamic

        blob, dynamic = convert_dynamic(_torch_module(ctx), _first_batch(ctx), _names(ctx))
        return _write(ctx, "tflite-dynamic", blob, notes + _batch_note(dynamic))
    return _write(ctx, "tflite-dynamic", convert_keras(_keras_model(ctx), "dynamic"), notes)


def export_tflite_int8(ctx: ExportContext) -> Artifact:
    if ctx.calibration is None:
        raise ExportError("tflite-int8 needs calibration data (--calib-data)")
    if _framework(ctx) == "torch":
        from .torch_convert import convert_int8

        blob, dynamic, table = convert_int8(_torch_module(ctx), ctx.calibration, _names(ctx), ctx.recipe,
                                            ctx.source.sha256)
        notes = _batch_note(dynamic) + [f"activation ranges: {table.method} (compress-export) at {len(table.ranges)} "
                                        "PT2E observer points; weights per-channel symmetric INT8 (PT2E)"]
    else:
        from .keras_ranges import calibrate_keras, representative, with_fake_quant

        model = _keras_model(ctx)
        # Ranges learned on the source model (QAT) arrive in ctx.ranges; otherwise our calibrators run here.
        table = ctx.ranges or calibrate_keras(model, ctx.calibration, ctx.recipe, ctx.source.sha256)
        quantized = with_fake_quant(model, dict(table.ranges))
        blob = convert_keras(quantized, "int8", representative(ctx.calibration, _names(ctx)), ctx.options.io)
        notes = [f"activation ranges: {table.method} (compress-export) for {len(table.ranges)} layer outputs; "
                 "graph inputs: the converter's min/max over the same calibration data",
                 f"input/output type: {ctx.options.io}"]
    table.save(ctx.bundle_dir / "ranges.json")
    notes += [f"kept in float: {name} ({reason})" for name, reason in sorted(table.skipped.items())]
    details = {"ranges": {"method": table.method, "tensors": len(table.ranges), "source": "compress-export"}}
    return _write(ctx, "tflite-int8", blob, notes, details)
