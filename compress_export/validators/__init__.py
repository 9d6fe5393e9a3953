"""Measuring an artifact against the original: running it on the held-out data through the task's metrics, the
reference outputs, the benchmark and its workers, speed-up arithmetic and A/A checks, graph and time-profile
diagnoses, the cross-machine check, and `validate`'s re-check of a bundle."""
