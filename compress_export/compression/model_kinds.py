"""Which kinds of model each compression step can change, checked from the MODEL argument alone, before anything is
loaded or written: a step asked of a model it cannot take is one line and exit 2, never silently skipped."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError

LANGUAGE_MODEL_STEPS = " (language models take --prune, --student every:K and --distill)"
KIND_NAMES = {"torch": "a PyTorch nn.Module (factory, checkpoint folder, trusted pickle)",
              "pt2": "a .pt2 exported program", "onnx": "an ONNX model", "keras": "a Keras model",
              "language-model": "a causal language model"}


def model_kind(model: str, family: str) -> str:
    """The kind of model MODEL names, without loading it: the run's task family first (a language model goes the
    language-model way), then its suffix."""
    if family == "generation":
        return "language-model"
    from ..sources.hf_source import is_checkpoint_folder
    from ..sources.loader import KERAS_SUFFIXES, PICKLE_SUFFIXES, _is_onnx

    path = Path(model)
    if is_checkpoint_folder(path):
        return "torch"
    if path.suffix in KERAS_SUFFIXES:
        return "keras"
    if path.suffix == ".pt2":
        return "pt2"
    if path.suffix in PICKLE_SUFFIXES or ":" in model:
        return "torch"
    if path.suffix == ".onnx" or (path.is_file() and _is_onnx(path)):
        return "onnx"
    return "unknown"


def refuse_unsupported(config, family: str) -> None:
    """Every compression step of the run must accept MODEL's kind."""
    if not config.compression:
        return
    from . import get_method

    kind = model_kind(str(config.model), family)
    if kind == "unknown":
        return  # the loader names what is wrong with MODEL
    for name, settings in config.compression:
        method = get_method(name)
        if kind in method.model_kinds:
            method.refuse_for(kind, settings)
        else:
            takes = " or ".join(KIND_NAMES[k].split(" (")[0] for k in method.model_kinds)
            raise UsageError(f"{method.options[0].flag} changes {takes}; {config.model} is {KIND_NAMES[kind]}, so it "
                             f"cannot take it: drop {method.options[0].flag}"
                             + (LANGUAGE_MODEL_STEPS if kind == "language-model" else ""))
