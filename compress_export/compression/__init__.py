"""The compression-method registry: a new method is one module with a CompressionMethod subclass plus
one line here. Looked up lazily, so listing methods imports no framework."""

from __future__ import annotations

from ..errors import UsageError
from ..lazy import resolve

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
