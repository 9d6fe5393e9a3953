"""The compression-method registry: a new method is one module with a CompressionMethod subclass (its options and
settings declared with it) plus one line here. The registry's order is the order the steps run: prune, student,
distill, 2:4 sparsity, then QAT on the result. Looked up lazily: only the light method modules are imported to list
options, never a framework."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import UsageError
from ..util.lazy import resolve

METHODS: dict[str, str] = {
    "prune": "compress_export.compression.prune:StructuredPruning",
    "student": "compress_export.compression.student:SmallerStudent",
    "distill": "compress_export.compression.distill:Distillation",
    "sparsity": "compress_export.compression.sparsity:TwoFourSparsity",
    "qat": "compress_export.compression.qat:QuantizationAwareTraining",
}


def get_method(name: str):
    if name not in METHODS:
        raise UsageError(f"unknown compression method {name!r}; known: {', '.join(METHODS)}")
    return resolve(METHODS[name])()


def all_methods() -> list:
    return [get_method(name) for name in METHODS]


def method_options() -> list:
    """Every method's options in registry order, each once (a method may read another's)."""
    found: dict[str, Any] = {}
    for method in all_methods():
        for option in method.options:
            found.setdefault(option.dest, option)
    return list(found.values())


def build_steps(values: Mapping[str, Any], seed: int) -> tuple[tuple[str, Any], ...]:
    """The steps the parsed options ask for, in registry order: (method name, its settings)."""
    steps = []
    for method in all_methods():
        settings = method.settings(values, seed)
        if settings is not None:
            steps.append((method.name, settings))
    return tuple(steps)
