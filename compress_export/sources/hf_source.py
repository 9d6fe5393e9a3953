"""A Hugging Face checkpoint folder (config.json, safetensors weights, tokenizer) of an encoder or a
sequence classifier, loaded offline by transformers without remote code. The model takes `input_ids` and
`attention_mask` ([batch, seq] int64); an encoder gives the mean-pooled sentence embedding (the mask
decides which tokens count, as sentence-transformers does), a classifier its logits. `--text-data FILE`
(one text a line) is tokenized with the folder's own tokenizer, so no .npz is needed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import UsageError, require
from ..specs import TensorSpec
from ..util.hashing import sha256_files

PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
EXPORTER = ("torch.onnx: optimum-onnx's newest release (0.1.0) requires transformers<4.58, older than this "
            "project's transformers 5 (see docs/design.md)")
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
DEFAULT_SEQUENCE = 128


def is_checkpoint_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def checkpoint_weights(folder: Path, trust_pickle: bool) -> tuple[list[Path], list[Path]]:
    """(safetensors files, pickled files) of a checkpoint folder; pickled ones alone only with --trust-pickle."""
    safe = [folder / name for name in SAFE_WEIGHTS if (folder / name).is_file()]
    pickled = [folder / name for name in PICKLED_WEIGHTS if (folder / name).is_file()]
    if not safe and not pickled:
        raise UsageError(f"{folder}: a checkpoint folder needs model.safetensors (or pytorch_model.bin)")
    if not safe and not trust_pickle:
        raise UsageError(f"{folder}: its weights are pickled (pytorch_model.bin); loading them runs code from the "
                         "file. Pass --trust-pickle if you trust its author, or convert them to safetensors")
    return safe, pickled


def read_config(folder: Path) -> dict:
    """config.json as a dict; a checkpoint that needs its own Python code (auto_map) is refused."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{folder}/config.json: not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise UsageError(f"{folder}/config.json: a model config is a JSON object")
    if config.get("auto_map"):
        raise UsageError(f"{folder}: the checkpoint needs its own Python code (auto_map); it is not run here")
    return config


def load_checkpoint(folder: Path, trust_pickle: bool):
    torch = require("torch", "torch")
    transformers = require("transformers", "hf")
    from .torch_source import TorchModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    safe, _ = checkpoint_weights(folder, trust_pickle)
    config = read_config(folder)
    classifier = any(name.endswith("ForSequenceClassification") for name in config.get("architectures") or [])
    auto = transformers.AutoModelForSequenceClassification if classifier else transformers.AutoModel
    try:
        model = auto.from_pretrained(str(folder), use_safetensors=bool(safe), attn_implementation="eager",
                                     local_files_only=True)
    except Exception as exc:
        raise UsageError(f"{folder}: transformers cannot load it ({str(exc).splitlines()[0][:200]})") from None

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = model

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    module = (Classifier() if classifier else SentenceEmbedding()).eval()
    specs = (TensorSpec("input_ids", ("batch", "seq"), "int64"),
             TensorSpec("attention_mask", ("batch", "seq"), "int64"))
    files = sorted(path for path in folder.iterdir() if path.is_file() and path.suffix in (".json", ".safetensors",
                                                                                          ".txt", ".model", ".bin"))
    loaded = TorchModel(module, str(folder), sha256_files(*files), specs)
    loaded.tokenizer_folder = folder
    loaded.details = {"exporter": EXPORTER}
    loaded.task = "classification" if classifier else "embedding"
    return loaded
