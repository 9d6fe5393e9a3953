"""Language-model targets: the KV-cache decoder onnxruntime-genai's model builder writes, its weight matrices at 8 or
4 bits (MatMulNBits), GPTQ rounding from calibration text, and what each matrix's rounding costs the loss."""
