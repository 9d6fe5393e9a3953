"""The data a run reads: calibration, held-out and training samples (.npz/.npy read without trusting their headers,
text tokenized by the model's tokenizer, or noise when asked), labels, the sample-major layout, and a language
model's held-out text, prompts and scoring windows."""
