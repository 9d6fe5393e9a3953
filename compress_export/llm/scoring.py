"""Held-out text scored by a decoder ONNX in onnxruntime: sliding windows (each token scored once, with up to
`window - stride` tokens of context carried over, as Hugging Face's perplexity recipe does), the negative
log-likelihood of every scored token and the model's top-1 prediction there. The KV cache inputs are fed empty,
so one call scores a whole window."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .build import MODEL_FILE


@dataclass(frozen=True)
class Window:
    ids: np.ndarray  # [tokens] int64
    first: int  # the first position whose next token is scored: positions first .. len-2 predict first+1 .. len-1


def windows(ids: np.ndarray, window: int, stride: int) -> list[Window]:
    """Cover ids[1:] exactly once: each window scores the tokens after the previous window's end."""
    found, end = [], 0
    for begin in range(0, max(len(ids) - 1, 1), stride):
        stop = min(begin + window, len(ids))
        first = max(end, begin + 1) - begin - 1
        if stop - begin >= 2 and first < stop - begin - 1:
            found.append(Window(ids[begin:stop], first))
        end = stop
        if stop == len(ids):
            break
    return found


class Feeds:
    """A genai-built decoder's inputs for one window: the ids, an all-ones mask, positions where it takes them, and
    every KV cache input empty."""

    def __init__(self, folder: Path, inputs: list[tuple[str, list, bool]]):
        """`inputs`: (name, shape with ints or names, whether float16) of each graph input."""
        decoder = json.loads((folder / "genai_config.json").read_text())["model"]["decoder"]
        self.past = {}
        for name, shape, half in inputs:
            if name.startswith("past_key_values"):
                heads = shape[1] if isinstance(shape[1], int) else decoder["num_key_value_heads"]
                size = shape[3] if isinstance(shape[3], int) else decoder["head_size"]
                self.past[name] = (heads, size, np.float16 if half else np.float32)
        self.names = {name for name, _, _ in inputs}

    @classmethod
    def of_model(cls, folder: Path, model) -> Feeds:
        import onnx

        return cls(folder, [(value.name, [d.dim_value if d.HasField("dim_value") else d.dim_param
                                          for d in value.type.tensor_type.shape.dim],
                             value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16)
                            for value in model.graph.input])

    def __call__(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        batch = ids[None].astype(np.int64)
        feeds = {"input_ids": batch, "attention_mask": np.ones_like(batch)}
        if "position_ids" in self.names:
            feeds["position_ids"] = np.arange(len(ids), dtype=np.int64)[None]
        for name, (heads, size, dtype) in self.past.items():
            feeds[name] = np.zeros((1, heads, 0, size), dtype)
        return feeds


class Decoder:
    """A genai-built decoder in onnxruntime (all cores, spinning off); `logits(ids)` for one window."""

    def __init__(self, folder: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        self.feeds = Feeds(folder, [(spec.name, spec.shape, "float16" in spec.type)
                                    for spec in self.session.get_inputs()])

    def logits(self, ids: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], self.feeds(ids))[0][0]


def score(folder: Path, spans: list[Window], threads: int | None = None, progress=None) -> dict[str, np.ndarray]:
    """{"nll": per scored token, "top1": the model's prediction at each scored position}."""
    decoder = Decoder(folder, threads)
    nll, top1 = [], []
    for span in spans:
        logits = decoder.logits(span.ids)[span.first: len(span.ids) - 1].astype(np.float64)
        targets = span.ids[span.first + 1:]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        nll.append(log_norm - shifted[np.arange(len(targets)), targets])
        top1.append(logits.argmax(axis=1))
        if progress:
            progress()
    return {"nll": np.concatenate(nll) if nll else np.zeros(0), "top1": np.concatenate(top1) if top1 else np.zeros(0)}
