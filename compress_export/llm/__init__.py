"""Generative language models: a causal LM from a Hugging Face folder or a GGUF file, exported with its KV cache
by onnxruntime-genai's model builder, its weights quantized per matrix (INT8 / block-wise INT4 MatMulNBits) within
a perplexity budget, and judged by perplexity, continuations and per-token speed in onnxruntime-genai."""
