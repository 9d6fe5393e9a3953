"""Targets: the catalog of declarations, and the protocol their export functions follow."""

from .registry import ExportContext, Target, get_target, parse_targets

__all__ = ["ExportContext", "Target", "get_target", "parse_targets"]
