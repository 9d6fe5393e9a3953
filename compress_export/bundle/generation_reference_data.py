"""A language model's reference data in its bundle, what `validate` re-checks elsewhere: the scored windows of token
ids with the FP32 decoder's per-token scores, the prompts and FP32 continuations, and the long prompt's text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LONG_PROMPT_CHARS = 20_000  # enough text for the long time-to-first-token prompt


def write_reference(bundle: Path, text, fp32: dict) -> None:
    """`text`: the run's HeldOutText; `fp32`: the FP32 decoder's generations (continuations and their ids)."""
    folder = bundle / "reference"
    folder.mkdir()
    np.savez(folder / "heldout.npz", **{f"window_{i}": span.ids for i, span in enumerate(text.spans)},
             first=np.asarray([span.first for span in text.spans], np.int64), nll=text.reference["nll"],
             top1=text.reference["top1"])
    (folder / "continuations.json").write_text(json.dumps(
        {"prompts": text.prompts, "continuations": fp32["continuations"], "continuation_ids": fp32["continuation_ids"],
         "max_new_tokens": text.settings.generation.max_new_tokens}, indent=2) + "\n")
    (folder / "long_prompt.txt").write_text(text.long_prompt[:LONG_PROMPT_CHARS], encoding="utf-8")
