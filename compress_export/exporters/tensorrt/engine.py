"""Building a TensorRT engine from the QDQ ONNX, where the `tensorrt` package imports."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ...errors import ExportError, UsageError, require
from ...specs import TensorSpec
from .options import HARDWARE_LEVELS, EngineFlags


def tensorrt_available() -> bool:
    if importlib.util.find_spec("tensorrt") is None:
        return False
    try:
        import tensorrt  # noqa: F401
    except Exception:  # an installed wheel without its CUDA libraries fails at import
        return False
    return True


@dataclass(frozen=True)
class EngineBuildSettings:
    """The optimization profile spans batch 1..max_batch (opt at max_batch); other dynamic dims take
    the sizes of `example_shapes` (from the reference inputs)."""

    inputs: tuple[TensorSpec, ...]
    max_batch: int = 32
    example_shapes: dict | None = None
    flags: EngineFlags = EngineFlags()


def _profile_shapes(spec: TensorSpec, settings: EngineBuildSettings) -> tuple[tuple, tuple, tuple]:
    example = (settings.example_shapes or {}).get(spec.name)
    low, opt, high = [], [], []
    for axis, dim in enumerate(spec.shape):
        if isinstance(dim, int):
            sizes = (dim, dim, dim)
        elif axis == 0:
            sizes = (1, settings.max_batch, settings.max_batch)
        elif example is not None:
            sizes = (example[axis],) * 3
        else:
            raise ExportError(f"input {spec.name!r} dim {axis} ({dim}) is dynamic; the engine profile needs a size")
        for target, size in zip((low, opt, high), sizes, strict=True):
            target.append(size)
    return tuple(low), tuple(opt), tuple(high)


def device_versions() -> dict:
    versions = {}
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            versions.update(cuda=torch.version.cuda, gpu=torch.cuda.get_device_name(0),
                            compute_capability=f"{major}.{minor}")
    except ImportError:
        pass
    return versions


def major_version(trt) -> int:
    try:
        return int(str(trt.__version__).split(".")[0])
    except ValueError:
        return 0


def network_flags(trt, flags: EngineFlags) -> tuple[int, bool]:
    """The network creation flags and whether the network is strongly typed. TensorRT 11 networks always are
    (weak typing and its FP16/INT8 builder flags were removed); 9-10 take STRONGLY_TYPED; before 10,
    EXPLICIT_BATCH is needed for a weakly typed ONNX network."""
    creation = trt.NetworkDefinitionCreationFlag
    if major_version(trt) >= 11:
        if flags.weakly_typed:
            raise UsageError(f"TensorRT {trt.__version__} builds only strongly typed networks (weak typing was removed "
                             "in 11): drop --trt-weakly-typed; the ONNX carries each layer's precision")
        return 0, True
    if not flags.weakly_typed and hasattr(creation, "STRONGLY_TYPED"):
        return 1 << int(creation.STRONGLY_TYPED), True
    if not flags.weakly_typed:
        raise UsageError(f"TensorRT {trt.__version__} cannot build strongly typed networks; pass --trt-weakly-typed")
    return (1 << int(creation.EXPLICIT_BATCH) if hasattr(creation, "EXPLICIT_BATCH") else 0), False


def configure(trt, config, flags: EngineFlags, strongly_typed: bool) -> dict:
    """Builder settings beyond the profile; returns what the manifest records of them."""
    if not strongly_typed:  # Q/DQ pins the quantized layers to INT8; the others may run in FP16
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)
    if flags.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        config.set_flag(trt.BuilderFlag.EXCLUDE_LEAN_RUNTIME)  # no host code in the plan
    if flags.hardware_compat != "none":
        levels = getattr(trt, "HardwareCompatibilityLevel", None)
        level = getattr(levels, HARDWARE_LEVELS[flags.hardware_compat], None)
        if level is None:
            raise UsageError(f"TensorRT {trt.__version__} has no hardware compatibility level {flags.hardware_compat}")
        config.hardware_compatibility_level = level
    if flags.sparse_weights:
        config.set_flag(trt.BuilderFlag.SPARSE_WEIGHTS)
    return {"strongly_typed": strongly_typed, "version_compatible": flags.version_compatible,
            "hardware_compat": flags.hardware_compat, "sparse_weights": flags.sparse_weights}


def with_model_flags(flags: EngineFlags, onnx_path: Path) -> EngineFlags:
    """The flags the model itself asks for: sparse weights where its metadata says its weights are 2:4."""
    import dataclasses

    import onnx

    from ...graphs.onnx_io import metadata
    from .lint import SPARSITY_KEY

    model = onnx.load(str(onnx_path), load_external_data=False)
    return dataclasses.replace(flags, sparse_weights=flags.sparse_weights or metadata(model, SPARSITY_KEY) == "2:4")


def build_engine(onnx_path: Path, engine_path: Path, timing_cache_path: Path, settings: EngineBuildSettings) -> dict:
    """Parse the QDQ ONNX and build a serialized engine; the timing cache is read and written back."""
    trt = require("tensorrt", "tensorrt")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    creation_flags, strongly_typed = network_flags(trt, settings.flags)
    network = builder.create_network(creation_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    recorded = configure(trt, config, with_model_flags(settings.flags, onnx_path), strongly_typed)
    profile = builder.create_optimization_profile()
    for spec in settings.inputs:
        profile.set_shape(spec.name, *_profile_shapes(spec, settings))
    config.add_optimization_profile(profile)
    previous = timing_cache_path.read_bytes() if timing_cache_path.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(previous), False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("TensorRT failed to build the engine (see its log above)")
    engine_path.write_bytes(bytes(serialized))
    timing_cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    return {"tensorrt": trt.__version__, **recorded, "max_batch": settings.max_batch, **device_versions()}
