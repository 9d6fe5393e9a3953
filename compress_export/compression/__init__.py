"""The compression-method registry: a new method is one module with a CompressionMethod subclass plus
one line here. Looked up lazily, so listing methods imports no framework."""

from __future__ import annotations

import importlib

from ..errors import UsageError

METHODS: dict[str, str] = {
    "qat": "compress_export.compression.qat:QuantizationAwareTraining",
}


def get_method(name: str):
    try:
        module, _, attr = METHODS[name].partition(":")
    except KeyError:
        raise UsageError(f"unknown compression method {name!r}; known: {', '.join(METHODS)}") from None
    return getattr(importlib.import_module(module), attr)()
