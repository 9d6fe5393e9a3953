"""Validation: one runner interface for every backend, a stateless comparator, a benchmark."""
