"""What a bundle's manifest must hold before `validate` trusts anything in it: its shape, its paths
(relative, inside the bundle), and that it lists exactly the files the folder holds."""

from __future__ import annotations

import math
import re
from pathlib import Path, PurePosixPath

from ..errors import BundleIntegrityError

REFERENCE_FILES = ("reference/inputs.npz", "reference/outputs.npz")
LANGUAGE_MODEL_REFERENCE = ("reference/heldout.npz", "reference/continuations.json", "reference/long_prompt.txt")
SHA256 = re.compile(r"[0-9a-f]{64}")


def _fail(manifest_path: Path, problem: str):
    raise BundleIntegrityError(f"{manifest_path}: {problem}")


def _relative_inside(name: object) -> bool:
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and path.parts[0] != ""


def check_manifest(manifest: object, manifest_path: Path) -> None:
    """Raise BundleIntegrityError (exit 2) naming what is wrong."""
    if not isinstance(manifest, dict):
        _fail(manifest_path, f"a manifest is a JSON object, not a {type(manifest).__name__}")
    for key, kind in (("target", str), ("artifact", dict), ("files", dict), ("gates", dict)):
        if not isinstance(manifest.get(key), kind):
            _fail(manifest_path, f"'{key}' is missing or not a {kind.__name__}")
    files = manifest["files"]
    for name, digest in files.items():
        if not _relative_inside(name):
            _fail(manifest_path, f"lists {name!r}, a path outside the bundle")
        if not isinstance(digest, str) or not SHA256.fullmatch(digest):
            _fail(manifest_path, f"the hash of {name} is not a sha256")
    artifact = manifest["artifact"]
    for key in ("path", "runtime"):
        if not isinstance(artifact.get(key), str):
            _fail(manifest_path, f"'artifact.{key}' is missing or not a string")
    if artifact["path"] not in files:
        _fail(manifest_path, f"the artifact {artifact['path']!r} is not among the bundle's listed files")
    for name in LANGUAGE_MODEL_REFERENCE if manifest.get("task") == "text-generation" else REFERENCE_FILES:
        if name not in files:
            _fail(manifest_path, f"{name} is not listed")
    for name, limit in manifest["gates"].items():
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit):
            _fail(manifest_path, f"gate {name!r} is not a finite number")
    if "task" in manifest and not isinstance(manifest["task"], str | None):
        _fail(manifest_path, "'task' is not a string")


def unlisted_files(folder: Path, files: dict, manifest_name: str) -> list[str]:
    """Files in the folder that the manifest does not list (links count as files)."""
    present = [path.relative_to(folder).as_posix() for path in folder.rglob("*")
               if (path.is_file() or path.is_symlink()) and path.relative_to(folder).as_posix() != manifest_name]
    return sorted(name for name in present if name not in files)
