"""Every target, declared as data. A new target is its module (an export function) plus one entry here. Targets are
grouped by the family of models they take (a tensor network, a causal language model): `--to onnx-int8` means the
QDQ graph for a network and 8-bit weight matrices for a language model."""

from __future__ import annotations

from .registry import Target

_ONNX = "compress_export.exporters.onnx.targets"
_TRT = "compress_export.exporters.tensorrt.targets"
_TFLITE = "compress_export.exporters.tflite.targets"
_GENAI = "compress_export.exporters.genai.targets"
_OPENVINO = "compress_export.exporters.openvino.targets"

CATALOG: tuple[Target, ...] = (
    Target("onnx", "FP32 ONNX (the exported graph itself)", f"{_ONNX}:export_fp32"),
    Target("onnx-fp16", "FP16 ONNX with FP32 inputs and outputs", f"{_ONNX}:export_fp16"),
    Target("onnx-int8", "static INT8 QDQ: per-channel INT8 weights, UINT8 activations from our ranges",
           f"{_ONNX}:export_int8", ranges="onnx", budget_search="rewrite",
           finish="compress_export.exporters.onnx.transformer_fusion:fuse_transformer_subgraphs"),
    Target("onnx-dynamic", "dynamic INT8: INT8 MatMul/Gemm weights, activations quantized at run time",
           f"{_ONNX}:export_dynamic"),
    Target("trt-int8", "TensorRT INT8: symmetric QDQ ONNX + calibration.cache (+ engine where TensorRT exists)",
           f"{_TRT}:export_trt_int8", runtime="tensorrt", extra="tensorrt", ranges="onnx", budget_search="reexport",
           options="tensorrt", revalidate=f"{_TRT}:tensorrt_or_proxy", calibrates=("Add",),
           search_graph=f"{_TRT}:searched_graph"),
    Target("openvino", "FP32 OpenVINO IR (model.xml + model.bin) for OpenVINO's CPU plugin", f"{_OPENVINO}:export_fp32",
           runtime="openvino", extra="openvino", baseline="openvino"),
    Target("openvino-fp16", "OpenVINO IR with FP16 weights", f"{_OPENVINO}:export_fp16", runtime="openvino",
           extra="openvino", baseline="openvino"),
    Target("openvino-int8", "OpenVINO IR, INT8 from our ranges and placement (the onnx-int8 graph as FakeQuantize)",
           f"{_OPENVINO}:export_int8", runtime="openvino", extra="openvino", ranges="onnx", budget_search="reexport",
           baseline="openvino", search_graph=f"{_OPENVINO}:searched_graph"),
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
    Target("onnx", "FP32 decoder with KV cache (onnxruntime-genai's model builder)", f"{_GENAI}:export_decoder",
           runtime="onnxruntime-genai", consumes="source", extra="llm", options="llm", family="generation"),
    Target("onnx-int8", "INT8 weight matrices (MatMulNBits, block 32) and 8-bit embedding table",
           f"{_GENAI}:export_int8", runtime="onnxruntime-genai", consumes="source", extra="llm", options="llm",
           family="generation"),
    Target("onnx-int4", "INT4 weight matrices (GPTQ, block 32), the most sensitive kept at 8 bits within the "
           "perplexity budget", f"{_GENAI}:export_int4", runtime="onnxruntime-genai", consumes="source", extra="llm",
           options="llm", family="generation", budget_search="widths"),
)

# The model families targets serve, named as errors and `compress-export targets` name them.
FAMILIES: dict[str, str] = {
    "tensor": "a network (ONNX, .pt2, PyTorch factory, Keras, Hugging Face encoder or classifier)",
    "generation": "a causal language model (Hugging Face ...ForCausalLM folder or GGUF file)",
}
TARGETS: dict[str, dict[str, Target]] = {family: {t.name: t for t in CATALOG if t.family == family}
                                         for family in FAMILIES}

# Each target family's settings class, by the key its targets name in `options`.
OPTIONS: dict[str, str] = {
    "tensorrt": "compress_export.exporters.tensorrt.options:TrtOptions",
    "tflite": "compress_export.exporters.tflite.options:TfliteOptions",
    "llm": "compress_export.exporters.genai.options:LlmSettings",
}


def default_options(key: str):
    from ..util.lazy import resolve

    return resolve(OPTIONS[key])()
