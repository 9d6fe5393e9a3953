"""tflite, tflite-fp16, tflite-dynamic, tflite-int8 from a Keras model; INT8 ranges from our calibrators."""

from __future__ import annotations

from ...errors import ExportError
from ...specs import Artifact
from ..registry import ExportContext, register
from .convert import convert_keras
from .runner import io_description

MODEL_FILE = "model.tflite"


def _keras_model(ctx: ExportContext):
    framework = getattr(ctx.source, "framework", None)
    if framework != "keras":
        raise ExportError(f"the TFLite targets take Keras models (.keras, .h5); this model is {framework}")
    from .keras_ranges import as_functional

    return as_functional(ctx.source.model)


def _write(ctx: ExportContext, target: str, blob: bytes, notes: list[str], details: dict | None = None) -> Artifact:
    path = ctx.bundle_dir / MODEL_FILE
    path.write_bytes(blob)
    io = io_description(str(path))
    layout = "NHWC" if any(len(spec["shape"]) == 4 for spec in io["inputs"].values()) else "as the source"
    described = ", ".join(f"{name} {spec['dtype']} {spec['shape']}" for name, spec in io["inputs"].items())
    notes.append(f"inputs: {described} (layout {layout}, the Keras model's own)")
    return Artifact(target, MODEL_FILE, ctx.inputs, ctx.outputs, "litert", tuple(notes),
                    {"tflite_io": io, "input_layout": layout, **(details or {})})


@register("tflite", "FP32 TFLite for LiteRT (Keras models)", extra="tflite", consumes="source")
def export_tflite(ctx: ExportContext) -> Artifact:
    return _write(ctx, "tflite", convert_keras(_keras_model(ctx), "fp32"), [])


@register("tflite-fp16", "TFLite with FP16 weights (Keras models)", extra="tflite", consumes="source")
def export_tflite_fp16(ctx: ExportContext) -> Artifact:
    return _write(ctx, "tflite-fp16", convert_keras(_keras_model(ctx), "fp16"), ["FP16 weights, FP32 compute"])


@register("tflite-dynamic", "TFLite with INT8 weights, activations quantized at run time (Keras models)",
          extra="tflite", consumes="source")
def export_tflite_dynamic(ctx: ExportContext) -> Artifact:
    return _write(ctx, "tflite-dynamic", convert_keras(_keras_model(ctx), "dynamic"),
                  ["INT8 weights; activations quantized at run time"])


@register("tflite-int8", "full-INT8 TFLite, activation ranges from our calibrators (Keras models)",
          extra="tflite", consumes="source")
def export_tflite_int8(ctx: ExportContext) -> Artifact:
    from .keras_ranges import calibrate_keras, representative, with_fake_quant

    model = _keras_model(ctx)
    if ctx.calibration is None:
        raise ExportError("tflite-int8 needs calibration data (--calib-data)")
    table = calibrate_keras(model, ctx.calibration, ctx.recipe, ctx.source.sha256)
    quantized = with_fake_quant(model, {name: table.ranges[name] for name in table.ranges})
    names = [tensor.name for tensor in model.inputs]
    blob = convert_keras(quantized, "int8", representative(ctx.calibration, names), ctx.tflite_io)
    table.save(ctx.bundle_dir / "ranges.json")
    notes = [f"activation ranges: {table.method} (compress-export) for {len(table.ranges)} layer outputs; "
             "graph inputs: the converter's min/max over the same calibration data",
             f"input/output type: {ctx.tflite_io}"]
    notes += [f"kept in float: {name} ({reason})" for name, reason in sorted(table.skipped.items())]
    return _write(ctx, "tflite-int8", blob, notes, {"ranges": {"method": table.method, "tensors": len(table.ranges),
                                                               "source": "compress-export"}})
