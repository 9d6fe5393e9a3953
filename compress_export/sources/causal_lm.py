"""Recognise and load a causal language model safely: a Hugging Face checkpoint folder whose architecture is a
`...ForCausalLM` (safetensors; pickled weights only with --trust-pickle; never the folder's own Python code), or a
GGUF file (tensors and metadata only: nothing in it executes). The model builder needs a folder of float weights,
so a GGUF model is dequantized by transformers and written as FP32 safetensors first: that dequantized model is
the FP32 reference."""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError, require
from ..util.hashing import sha256_files

CAUSAL_SUFFIX = "ForCausalLM"


@dataclass
class CausalLM:
    folder: Path  # config, FP32 (or float) weights and tokenizer: what the builder reads
    description: str
    sha256: str
    kind: str  # "folder" or "gguf"
    config: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"model": self.description, "framework": "transformers", "kind": self.kind, "sha256": self.sha256,
                "architecture": (self.config.get("architectures") or ["?"])[0],
                "layers": self.config.get("num_hidden_layers"), "hidden_size": self.config.get("hidden_size"),
                "vocab_size": self.config.get("vocab_size")}


def is_causal_lm(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".gguf"
    if path.is_dir() and (path / "config.json").is_file():
        try:
            config = json.loads((path / "config.json").read_text())
        except (OSError, ValueError):
            return False
        architectures = config.get("architectures") if isinstance(config, dict) else None
        return isinstance(architectures, list) and any(str(name).endswith(CAUSAL_SUFFIX) for name in architectures)
    return False


def load_causal_lm(path: Path, work: Path, trust_pickle: bool) -> CausalLM:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if path.is_file():
        return _from_gguf(path, work)
    from .hf_source import checkpoint_weights, read_config

    safe, pickled = checkpoint_weights(path, trust_pickle)
    config = read_config(path)
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        raise UsageError(f"{path}: no tokenizer (tokenizer.json or tokenizer.model) beside the weights")
    for weights in path.glob("*.safetensors"):
        _check_safetensors(weights)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors", ".model",
                                                                             ".bin", ".txt", ".jinja"))
    folder = path
    if pickled and not safe:  # the builder reads safetensors or pickles; convert once, trusted
        with quiet():
            folder = _save_float(_load_transformers(path, None), work / "checkpoint", path)
    return CausalLM(folder, str(path), sha256_files(*files), "folder", config)


@contextlib.contextmanager
def quiet():
    """transformers' progress bars and warnings go to a buffer (its errors still raise)."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _check_safetensors(path: Path) -> None:
    """The header parses and names at least one tensor (it is read before the builder maps the file)."""
    safetensors = require("safetensors", "torch")
    try:
        with safetensors.safe_open(str(path), framework="np") as handle:
            if not list(handle.keys()):
                raise ValueError("no tensors")
    except Exception as exc:  # the reader's errors are the file's
        raise UsageError(f"{path}: not a readable safetensors file ({str(exc)[:200]})") from None


def _load_transformers(folder: Path, gguf_file: str | None):
    torch = require("torch", "torch")
    transformers = require("transformers", "hf")
    if gguf_file:
        require("gguf", "llm")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file, local_files_only=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file,
                                                                  dtype=torch.float32, local_files_only=True)
    except Exception as exc:  # a damaged or hostile file fails anywhere inside the readers: it is the file's fault
        what = gguf_file or folder
        raise UsageError(f"{what}: transformers cannot load it as a causal LM ({str(exc).splitlines()[0][:200]})") \
            from None
    return model, tokenizer


def float_model(folder: Path):
    """The PyTorch model of a checked folder (CausalLM.folder: safetensors, or pickles converted with trust), FP32,
    without transformers' bars."""
    with quiet():
        return _load_transformers(folder, None)[0]


def _save_float(loaded, out: Path, origin: Path) -> Path:
    """The model as float safetensors plus its tokenizer. A GGUF-loaded model refuses save_pretrained ("quantized
    with gguf"): its config loses the quantization note and a plain copy of the same class takes the weights."""
    model, tokenizer = loaded
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    clean = type(model)(config)
    clean.load_state_dict(model.state_dict())
    out.mkdir(parents=True, exist_ok=True)
    clean.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def _from_gguf(path: Path, work: Path) -> CausalLM:
    from .hf_source import read_config

    with quiet():  # transformers draws its own bars for the conversion; our stage lines say what happens
        folder = _save_float(_load_transformers(path.parent, path.name), work / "checkpoint", path)
    config = read_config(folder)
    return CausalLM(folder, str(path), sha256_files(path), "gguf", config)
