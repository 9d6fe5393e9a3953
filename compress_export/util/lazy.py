"""Registries name their members as "package.module:attribute" and import them only when used, so that
listing targets, runtimes or methods imports no framework."""

from __future__ import annotations

import importlib


def resolve(reference: str):
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)
