"""The command line: commands that build a config and call the Python API, option groups (generated from the
registries where a registry declares them), recipe files and the terminal summary."""

from .main import cli, main

__all__ = ["cli", "main"]
