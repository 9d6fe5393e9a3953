"""One exception root for everything a user can fix; the CLI prints these as one line."""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING_DEPENDENCY = 3
EXIT_EXPORT_FAILED = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_INTERNAL = 70


class CompressExportError(Exception):
    """An error the user can act on. `exit_code` is what the CLI exits with."""

    exit_code = EXIT_USAGE


class UsageError(CompressExportError):
    """Bad arguments, unreadable or inconsistent input files."""

    exit_code = EXIT_USAGE


class MissingDependencyError(CompressExportError):
    """An optional framework or device is not available."""

    exit_code = EXIT_MISSING_DEPENDENCY


class ExportError(CompressExportError):
    """A framework failed to convert or quantize the model."""

    exit_code = EXIT_EXPORT_FAILED


class BundleIntegrityError(UsageError):
    """A bundle's files do not match the hashes in its manifest."""


def require(module: str, extra: str):
    """Import an optional framework, or explain which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed: pip install 'compress-export[{extra}]' ({exc})"
        ) from None
