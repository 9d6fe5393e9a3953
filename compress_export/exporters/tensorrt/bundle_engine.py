"""`compress-export build-engine BUNDLE`: the engine of a trt-int8 bundle, built on the device that runs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...bundle.manifest import verify_bundle, write_manifest
from ...errors import MissingDependencyError, UsageError
from ...specs import TensorSpec
from .engine import EngineBuildSettings, build_engine, tensorrt_available
from .options import EngineFlags
from .targets import ENGINE_FILE, MODEL_FILE, TIMING_CACHE_FILE


def build_engine_for_bundle(folder: Path, max_batch: int = 32, flags: EngineFlags = EngineFlags()) -> dict:
    """Build the TensorRT engine of a trt-int8 bundle on this device and record it in the manifest."""
    manifest = verify_bundle(folder)
    if manifest["target"] != "trt-int8":
        raise UsageError(f"{folder}: a {manifest['target']} bundle; build-engine takes trt-int8 bundles")
    if not tensorrt_available():
        raise MissingDependencyError("tensorrt not installed: pip install 'compress-export[tensorrt]' on a machine "
                                     "with an NVIDIA GPU (engines are built on the device that runs them)")
    with np.load(folder / "reference" / "inputs.npz") as npz:
        shapes = {key: npz[key].shape for key in npz.files}
    inputs = tuple(TensorSpec.from_dict(spec) for spec in manifest["artifact"]["inputs"])
    partial_engine, partial_cache = folder / f".{ENGINE_FILE}.partial", folder / f".{TIMING_CACHE_FILE}.partial"
    if (folder / TIMING_CACHE_FILE).is_file():
        partial_cache.write_bytes((folder / TIMING_CACHE_FILE).read_bytes())
    try:
        versions = build_engine(folder / MODEL_FILE, partial_engine, partial_cache,
                                EngineBuildSettings(inputs, max_batch, shapes, flags))
    except BaseException:
        partial_engine.unlink(missing_ok=True)
        partial_cache.unlink(missing_ok=True)
        raise
    partial_engine.replace(folder / ENGINE_FILE)
    partial_cache.replace(folder / TIMING_CACHE_FILE)
    info = {key: value for key, value in manifest.items() if key not in ("files", "libraries", "platform", "schema")}
    info["artifact"] = {**manifest["artifact"], "path": ENGINE_FILE, "runtime": "tensorrt", "engine_built": True,
                        "validated_with": "TensorRT", "tensorrt": versions}
    write_manifest(folder, info)
    return versions
