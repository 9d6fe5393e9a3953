"""Signed activation Q/DQ read by OpenVINO as the equal unsigned pair.

OpenVINO 2026.4's CPU plugin computes a nearest Resize feeding a Concat that an INT8 Conv reads wrongly when the
activations are quantized signed (INT8, zero point 0, as TensorRT requires): the PP-OCRv4 detector's trt-int8
graph read at cosine 0.03 against onnxruntime, a four-node graph at 0.84 (tests/unit/test_openvino_qdq.py). The
same activations as UINT8 with zero point 128 quantize to the same values ((q + 128) - 128 = q, and both saturate
at -128 and 127 steps), and OpenVINO computes that pair right. Weight DequantizeLinears (on initializers) keep
their INT8: only activation pairs change, each with its own new zero point, so a zero point shared with a weight
is never touched."""

from __future__ import annotations

import numpy as np

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def signed_activation_pairs(model) -> list:
    """Activation QuantizeLinear/DequantizeLinear nodes with a signed INT8 zero point of 0."""
    import onnx

    initializers = {init.name: init for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type not in QDQ_OPS or len(node.input) < 3 or node.input[0] in initializers:
            continue
        zero_point = initializers.get(node.input[2])
        if zero_point is not None and zero_point.data_type == onnx.TensorProto.INT8 \
                and not onnx.numpy_helper.to_array(zero_point).any():
            found.append(node)
    return found


def unsigned_activations(model) -> int:
    """Rewrites `model` in place: every signed zero-point-0 activation pair gets a UINT8 zero point of 128.
    Returns how many nodes changed (0: the model is left as it was)."""
    import onnx

    nodes = signed_activation_pairs(model)
    if not nodes:
        return 0
    initializers = {init.name: init for init in model.graph.initializer}
    made = {}
    for node in nodes:
        old = node.input[2]
        if old not in made:
            shape = tuple(initializers[old].dims)
            made[old] = f"{old}_uint8"
            model.graph.initializer.append(onnx.numpy_helper.from_array(np.full(shape, 128, np.uint8), made[old]))
        node.input[2] = made[old]
    # The quantized tensors are UINT8 now: a declared INT8 type for them would no longer load.
    quantized = {node.output[0] for node in nodes if node.op_type == "QuantizeLinear"}
    kept = [info for info in model.graph.value_info if info.name not in quantized]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    return len(nodes)


def openvino_readable(path: str):
    """The ONNX model at `path` with its signed activation pairs made unsigned, or None when it has none (or keeps
    its weights in external files, which a model read from memory cannot find)."""
    import onnx

    header = onnx.load(path, load_external_data=False)
    if any(init.data_location == onnx.TensorProto.EXTERNAL for init in header.graph.initializer):
        return None
    return header if unsigned_activations(header) else None
