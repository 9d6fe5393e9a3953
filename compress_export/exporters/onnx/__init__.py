"""ONNX targets of a network: the FP32 export every other target starts from, FP16, static INT8 QDQ from our ranges
(with the rewrites the budget search scores and ships), dynamic INT8, and the finishing fusions."""
