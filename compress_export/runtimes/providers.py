"""Which onnxruntime execution provider runs the artifacts (`--provider`). The choice reaches benchmark workers
through the environment, so every process that runs an artifact uses the same one; the tool's own sessions
(calibration, search) stay on the CPU."""

from __future__ import annotations

import os

PROVIDER_ENV = "COMPRESS_EXPORT_PROVIDER"
CPU = "CPUExecutionProvider"

PROVIDER_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                  "tensorrt": "TensorrtExecutionProvider", "openvino": "OpenVINOExecutionProvider",
                  "dml": "DmlExecutionProvider", "coreml": "CoreMLExecutionProvider", "rocm": "ROCMExecutionProvider",
                  "qnn": "QNNExecutionProvider", "xnnpack": "XnnpackExecutionProvider"}


def provider_name(name: str) -> str:
    return PROVIDER_NAMES.get(name.lower(), name)


def use_provider(name: str) -> str:
    """Check that this onnxruntime build has the provider and make it the artifacts' one (this process and
    the benchmark workers it starts); returns its full name."""
    import onnxruntime as ort

    from ..errors import MissingDependencyError

    full = provider_name(name)
    available = ort.get_available_providers()
    if full not in available:
        raise MissingDependencyError(f"--provider {name}: {full} is not in this onnxruntime build (available: "
                                     f"{', '.join(available)}); install the onnxruntime package built with it")
    os.environ[PROVIDER_ENV] = full
    return full


def artifact_providers() -> list[str] | None:
    chosen = os.environ.get(PROVIDER_ENV)
    return None if not chosen else list(dict.fromkeys([chosen, CPU]))


def current_provider() -> str:
    return os.environ.get(PROVIDER_ENV) or CPU
