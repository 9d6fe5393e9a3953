"""Calibration we own: one streaming pass of bounded memory, the range methods (calibrators) computed from its
histograms, the range table, the TensorRT calibration cache, and where a run's ranges come from."""
