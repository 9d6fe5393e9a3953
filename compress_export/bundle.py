"""Bundles: a folder per target, written to a temporary path and renamed into place, with a manifest."""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

from .bundle_schema import check_manifest, unlisted_files
from .errors import BundleIntegrityError, UsageError
from .hashing import sha256_file
from .providers import current_provider

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


# CPU features that change INT8 results or speed: without VNNI onnxruntime's signed INT8 kernels can
# saturate, and VNNI/AMX decide how much faster INT8 runs.
INT8_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")


def platform_info() -> dict[str, str]:
    cpu = cpu_info()
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "processor": cpu.get("model") or platform.processor() or platform.machine(),
        "cpus": str(os.cpu_count()),
        "int8_features": cpu.get("features", "unknown"),
        "onnxruntime": _version("onnxruntime"),
        "onnxruntime_provider": current_provider(),
        "tensorrt": _version("tensorrt"),
        "gpu": gpu_info(),
    }


@functools.cache  # one nvidia-smi call per process: the GPUs do not change while it runs
def gpu_info() -> str:
    """The NVIDIA GPUs and their compute capability, from nvidia-smi (no framework import); "none" without."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "none"
    try:
        answer = subprocess.run([smi, "--query-gpu=name,compute_cap", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown (nvidia-smi failed)"
    gpus = [line.split(",") for line in answer.strip().splitlines() if "," in line]
    return "; ".join(f"{name.strip()} (compute capability {cc.strip()})" for name, cc in gpus) or "none"


def cpu_info() -> dict[str, str]:
    """The CPU's model name and its INT8-relevant features, from /proc/cpuinfo (Linux; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines()[:60] if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    present = ", ".join(feature for feature in INT8_FEATURES if feature in flags)
    return {"model": fields.get("model name", ""), "features": present or "none of " + "/".join(INT8_FEATURES)}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def ensure_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".ce-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"--out {out}: not writable ({exc.strerror or exc})") from None


class BundleWriter:
    """`with BundleWriter(final) as folder:` fill `folder`; it replaces `final` only on success."""

    def __init__(self, final: Path):
        self.final = final
        self.folder: Path | None = None

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.partial-", dir=self.final.parent))
        umask = os.umask(0)
        os.umask(umask)
        self.folder.chmod(0o777 & ~umask)
        return self.folder

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        retired = None
        if self.final.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.old-", dir=self.final.parent))
            os.replace(self.final, retired / "bundle")
        os.replace(self.folder, self.final)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """The whole file or none of it: written beside it under a dot name, then renamed into place."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


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
