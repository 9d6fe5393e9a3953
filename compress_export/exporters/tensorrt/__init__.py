"""TensorRT: explicit-quantization QDQ ONNX, its linter, engine building and a runner where TensorRT exists."""
