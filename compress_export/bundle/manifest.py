"""A bundle's manifest: the sha256 of every file, the run's facts, library versions and the machine; and the check
`validate` makes before it trusts anything in a bundle."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from ..errors import BundleIntegrityError, UsageError
from ..runtimes.machine import platform_info
from ..util.hashing import sha256_file
from .schema import check_manifest, unlisted_files
from .writer import write_text_atomic

MANIFEST = "manifest.json"
SCHEMA = "compress-export/bundle@1"
LIBRARIES = ("compress-export", "numpy", "onnx", "onnxruntime", "torch", "onnxscript", "tensorflow", "tensorrt")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_manifest(folder: Path, info: dict) -> dict:
    files = {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST and not path.name.startswith(".")
    }
    manifest = {
        "schema": SCHEMA,
        **info,
        "files": files,
        "libraries": library_versions(),
        "platform": platform_info(),
    }
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a bundle folder")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{folder}: no readable {MANIFEST} ({exc})") from None
    if isinstance(manifest, dict) and manifest.get("schema") != SCHEMA:
        raise BundleIntegrityError(f"{path}: unknown bundle schema {manifest.get('schema')!r}")
    check_manifest(manifest, path)
    return manifest


def verify_bundle(folder: Path) -> dict:
    """The manifest, after checking its shape, that it lists every file in the folder and nothing outside
    it, and that every listed file is present, a plain file, and matches its hash."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    problems = [f"{name} is not listed in the manifest" for name in unlisted_files(folder, manifest["files"], MANIFEST)]
    for name, expected in manifest["files"].items():
        path = folder / name
        if path.is_symlink() or not path.is_file():
            problems.append(f"{name} is missing" if not path.exists() else f"{name} is not a plain file")
        elif sha256_file(path) != expected:
            problems.append(f"{name} does not match its hash")
    if problems:
        raise BundleIntegrityError(f"{folder}: bundle refused: {'; '.join(problems)}")
    return manifest
