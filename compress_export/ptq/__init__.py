"""Post-training steps that change the FP32 weights an INT8 target quantizes, at no run-time cost."""
