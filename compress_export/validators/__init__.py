"""Validation helpers: the comparator that runs a candidate against the reference outputs, the benchmark
and its worker, fusion analysis."""
