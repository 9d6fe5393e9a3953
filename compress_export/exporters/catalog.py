"""Every target, declared as data. A new target is its module (an export function) plus one entry here."""

from __future__ import annotations

from .registry import Target

_ONNX = "compress_export.exporters.onnx_targets"
_TRT = "compress_export.exporters.tensorrt.target"
_TFLITE = "compress_export.exporters.tflite.targets"

TARGETS: dict[str, Target] = {target.name: target for target in (
    Target("onnx", "FP32 ONNX (the exported graph itself)", f"{_ONNX}:export_fp32"),
    Target("onnx-fp16", "FP16 ONNX with FP32 inputs and outputs", f"{_ONNX}:export_fp16"),
    Target("onnx-int8", "static INT8 QDQ: per-channel INT8 weights, UINT8 activations from our ranges",
           f"{_ONNX}:export_int8", ranges="onnx", budget_search="rewrite",
           finish="compress_export.exporters.transformer_fusion:fuse_transformer_subgraphs"),
    Target("onnx-dynamic", "dynamic INT8: INT8 MatMul/Gemm weights, activations quantized at run time",
           f"{_ONNX}:export_dynamic"),
    Target("trt-int8", "TensorRT INT8: symmetric QDQ ONNX + calibration.cache (+ engine where TensorRT exists)",
           f"{_TRT}:export_trt_int8", runtime="tensorrt", extra="tensorrt", ranges="onnx", budget_search="reexport",
           options="tensorrt", revalidate=f"{_TRT}:tensorrt_or_proxy", calibrates=("Add",)),
    Target("tflite", "FP32 TFLite for LiteRT (Keras and PyTorch models)", f"{_TFLITE}:export_tflite",
           runtime="litert", consumes="source", extra="tflite", baseline="tflite", options="tflite"),
    Target("tflite-fp16", "TFLite with FP16 weights (Keras models)", f"{_TFLITE}:export_tflite_fp16",
           runtime="litert", consumes="source", extra="tflite", baseline="tflite", options="tflite"),
    Target("tflite-dynamic", "TFLite with INT8 weights, activations quantized at run time",
           f"{_TFLITE}:export_tflite_dynamic", runtime="litert", consumes="source", extra="tflite",
           baseline="tflite", options="tflite"),
    Target("tflite-int8", "full-INT8 TFLite, activation ranges from our calibrators", f"{_TFLITE}:export_tflite_int8",
           runtime="litert", consumes="source", extra="tflite", ranges="source", baseline="tflite",
           options="tflite"),
)}

# Each target family's settings class, by the key its targets name in `options`.
OPTIONS: dict[str, str] = {
    "tensorrt": "compress_export.exporters.tensorrt.options:TrtOptions",
    "tflite": "compress_export.exporters.tflite.options:TfliteOptions",
}


def default_options(key: str):
    from ..lazy import resolve

    return resolve(OPTIONS[key])()
