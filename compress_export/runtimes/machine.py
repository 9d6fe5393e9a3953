"""The machine a measurement belongs to: CPU model and its INT8 features, cores, onnxruntime and its execution
provider, TensorRT, GPUs. Every benchmark and bundle records it, because speed and INT8 results depend on it."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from .providers import current_provider

# CPU features that change INT8 results or speed: without VNNI onnxruntime's signed INT8 kernels can
# saturate, and VNNI/AMX decide how much faster INT8 runs.
INT8_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")
VNNI_FEATURES = {"avx512_vnni", "avx_vnni", "amx_int8"}  # integer dot products that sum in 32 bits


NODE_ENV = "COMPRESS_EXPORT_NODE"  # a fleet names the cluster node a job runs on


def node_name() -> str:
    """The machine a measurement was taken on: its host name, and the cluster node where a fleet ran the job."""
    return os.environ.get(NODE_ENV) or platform.node()


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
        "openvino": _version("openvino"),
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


def has_vnni() -> bool:
    """Whether the CPU sums INT8 products in 32 bits (without, AVX2 kernels sum pairs in 16 bits and can saturate)."""
    return bool(VNNI_FEATURES & set(cpu_info().get("features", "").split(", ")))


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


