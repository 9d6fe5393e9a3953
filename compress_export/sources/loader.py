"""Turn the MODEL argument into a LoadedModel, never running pickled code unless trusted."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path

from ..data.calibration_data import infer_specs
from ..errors import ExportError, UsageError, require
from ..specs import TensorSpec
from ..util.hashing import sha256_files
from ..util.quiet_logs import quiet_loggers
from .base import LoadedModel

log = logging.getLogger(__name__)
SPEC_CARRYING_SUFFIXES = (".onnx", ".pt2", ".keras", ".h5", ".hdf5")
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".ckpt")
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
PICKLE_REFUSAL = (
    "{path} is a pickled PyTorch object; loading it runs code from the file. "
    "Pass --trust-pickle if you trust its author, or export a .pt2 / give a factory and --weights."
)


def load_model(
    spec: str,
    *,
    weights: str | None = None,
    inputs: tuple[TensorSpec, ...] = (),
    data_specs: tuple[TensorSpec, ...] = (),
    trust_pickle: bool = False,
) -> LoadedModel:
    """`spec` is a `.onnx`, a `.pt2`, a Keras `.keras`/`.h5`, a Hugging Face checkpoint folder (or a diffusers
    model or pipeline folder), a pickled module
    (only with trust_pickle), or `file.py:factory` / `package.module:factory`. Input specs come from the file,
    else `inputs`, else `data_specs`."""
    path = Path(spec)
    from .diffusers_source import diffusers_folder
    from .hf_source import is_checkpoint_folder

    denoiser = diffusers_folder(path)
    if denoiser is not None:
        from .diffusers_source import load_diffusers

        if weights:
            raise UsageError("--weights applies to PyTorch factories; a diffusers folder carries its weights")
        return load_diffusers(denoiser, inputs or data_specs, trust_pickle)
    if is_checkpoint_folder(path):
        from .hf_source import load_checkpoint

        if weights:
            raise UsageError("--weights applies to PyTorch factories; a checkpoint folder carries its weights")
        return load_checkpoint(path, trust_pickle)
    if path.suffix == ".onnx" or (path.is_file() and _is_onnx(path)):
        from .onnx_source import OnnxModel

        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        if weights:
            raise UsageError("--weights applies to PyTorch factories, not to ONNX models")
        return OnnxModel(path)
    if path.suffix in KERAS_SUFFIXES:
        from .keras_source import KerasModel, load_keras

        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        if weights:
            raise UsageError("--weights applies to PyTorch factories, not to Keras models")
        return KerasModel(load_keras(path, trust_pickle), path)
    if path.suffix == ".pt2":
        return _load_exported_program(path, trust_pickle)
    if path.suffix in PICKLE_SUFFIXES:
        return _load_pickled_module(path, trust_pickle, inputs or data_specs)
    if ":" in spec:
        return _load_factory(spec, weights, inputs or data_specs, trust_pickle)
    if not path.exists():
        raise UsageError(f"{spec}: no such file, and not a factory spec (file.py:factory or package.module:factory)")
    raise UsageError(f"{spec}: unsupported model format; give .onnx, .pt2, .keras, .h5, or a factory (file.py:factory)")


def _is_onnx(path: Path) -> bool:
    return path.suffix not in PICKLE_SUFFIXES + KERAS_SUFFIXES + (".pt2", ".py")


def _require_specs(specs: tuple[TensorSpec, ...], what: str) -> tuple[TensorSpec, ...]:
    if not specs:
        raise UsageError(f"{what}: input shapes unknown; give --input name:1x3x224x224[:dtype] or --calib-data")
    return specs


def _load_exported_program(path: Path, trust_pickle: bool) -> LoadedModel:
    torch = require("torch", "torch")
    from .pt2_archive import check_pt2
    from .torch_source import TorchModel

    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    check_pt2(path, trust_pickle)
    try:
        # torch.export logs a full traceback for a corrupt archive before raising; the one-line error says it
        with quiet_loggers("torch.export", "torch._export", level=logging.CRITICAL):
            program = torch.export.load(str(path))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{path}: not a readable torch.export program, the file may be corrupt ({reason})") from None
    specs = []
    user_inputs = set(program.graph_signature.user_inputs)
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            value = node.meta.get("val")
            dims = tuple(
                int(d) if str(d).isdigit() else ("batch" if axis == 0 else str(d)) for axis, d in enumerate(value.shape)
            )
            dims = ("batch",) + dims[1:] if dims else dims
            specs.append(TensorSpec(node.name, dims, str(value.dtype).removeprefix("torch.")))
    return TorchModel(program.module(), str(path), sha256_files(path), tuple(specs), exported=program)


def _load_pickled_module(path: Path, trust_pickle: bool, specs: tuple[TensorSpec, ...]) -> LoadedModel:
    torch = require("torch", "torch")
    from .torch_source import TorchModel

    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if not trust_pickle:
        try:
            content = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "Unsupported global" in str(exc):  # a pickled object: it names a class or function to call
                raise UsageError(PICKLE_REFUSAL.format(path=path)) from None
            reason = next((line.strip() for line in str(exc).splitlines() if "WeightsUnpickler error" in line), "")
            raise UsageError(f"{path}: not readable as PyTorch tensors ({reason or 'unpickling failed'}); if it is a "
                             "pickled model, loading it runs code: pass --trust-pickle only if you trust its "
                             "author") from None
        except Exception as exc:
            raise UsageError(f"{path}: not a readable PyTorch file ({exc})") from None
        if isinstance(content, Mapping):
            raise UsageError(f"{path} holds a state_dict, not a model: give a factory and --weights {path}")
        raise UsageError(f"{path}: holds a {type(content).__name__}, not a model")
    try:
        module = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UsageError(f"{path}: cannot unpickle the model ({exc})") from None
    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"{path}: holds a {type(module).__name__}, not an nn.Module")
    return TorchModel(module.eval(), str(path), sha256_files(path), _require_specs(specs, str(path)))


def _load_factory(spec: str, weights: str | None, specs: tuple[TensorSpec, ...], trust_pickle: bool) -> LoadedModel:
    torch = require("torch", "torch")
    from .torch_source import TorchModel

    target, _, attribute = spec.rpartition(":")
    if not target or not attribute.isidentifier():
        raise UsageError(f"{spec}: expected file.py:factory or package.module:factory")
    module = _import_target(target)
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise UsageError(f"{spec}: {target} has no callable {attribute!r}")
    try:
        model = factory()
    except Exception as exc:
        raise ExportError(f"{spec}: the factory raised {type(exc).__name__}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"{spec}: the factory returned {type(model).__name__}, not an nn.Module")
    source_files = [Path(module.__file__)] if getattr(module, "__file__", None) else []
    if weights:
        _load_weights(model, Path(weights), trust_pickle)
        source_files.append(Path(weights))
    return TorchModel(model.eval(), spec, sha256_files(*source_files), _require_specs(specs, spec))


def _import_target(target: str):
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"{target}: no such file")
        name = f"compress_export_user_{path.stem}"
        loader_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            raise UsageError(f"{target}: importing it raised {type(exc).__name__}: {exc}") from None
        return module
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        raise UsageError(f"{target}: cannot import ({exc})") from None


def _load_weights(model, path: Path, trust_pickle: bool) -> None:
    import torch

    if not path.is_file():
        raise UsageError(f"--weights {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError:
        raise UsageError(PICKLE_REFUSAL.format(path=path)) from None
    except Exception as exc:
        raise UsageError(f"--weights {path}: cannot read ({exc})") from None
    if not isinstance(state, Mapping):
        raise UsageError(f"--weights {path}: expected a state_dict, found {type(state).__name__}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UsageError(f"--weights {path}: does not fit the model ({str(exc).splitlines()[0]})") from None


def load_source(config) -> LoadedModel:
    """The model named by `config.model`; input specs from the file, `--input`, or the data file."""
    data_path = config.calib_data or config.val_data
    carries_specs = Path(config.model).suffix in SPEC_CARRYING_SUFFIXES
    data_specs = infer_specs(data_path) if data_path and not config.inputs and not carries_specs else ()
    model = load_model(config.model, weights=config.weights, inputs=config.inputs, data_specs=data_specs,
                       trust_pickle=config.trust_pickle)
    if config.inputs and model.framework == "onnx":
        log.info("--input ignored: the ONNX file declares its inputs")
    return model
