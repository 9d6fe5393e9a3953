"""Held-out text scored by a decoder in its runtime: the negative log-likelihood of every scored token of each window
(`data.text.windows`) and the model's top-1 prediction there."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.text import Window
from ..runtimes import open_runner


def score(folder: Path, spans: list[Window], threads: int | None = None, progress=None) -> dict[str, np.ndarray]:
    """{"nll": per scored token, "top1": the model's prediction at each scored position}."""
    with open_runner("onnxruntime-genai", str(folder), threads) as decoder:
        return _scores(decoder, spans, progress)


def _scores(decoder, spans: list[Window], progress) -> dict[str, np.ndarray]:
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
