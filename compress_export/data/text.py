"""The text a language-model run reads: held-out text for perplexity and the search (`--text-data FILE|DIR`: UTF-8
text files, a folder's `*.txt`/`*.md` in name order; default: Python's own documentation of a few standard modules,
which every Python has offline), calibration text for GPTQ (`--calib-data FILE|DIR`, the same forms; default: the
documentation of other modules), and prompts for continuations (`--prompts FILE`: one per line, or JSONL with a
"prompt" key; default: DEFAULT_PROMPTS). The report says which were used. Held-out token ids are scored in sliding
windows (each token once, with up to `window - stride` tokens of context carried over, as Hugging Face's perplexity
recipe does). An encoder's text (`--text-data` for a Hugging Face encoder folder) is tokenized into an .npz of
fixed-length samples."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError, require

DEFAULT_PROMPTS = (
    "The capital of France is",
    "def fibonacci(n):",
    "The sky looks blue during the day because",
    "The three most important things to know about photosynthesis are",
    "Once upon a time, in a small village by the sea,",
)
DOC_MODULES = ("collections", "argparse", "json", "pathlib")
CALIBRATION_MODULES = ("re", "functools", "itertools", "logging", "typing")  # none of DOC_MODULES
TEXT_SUFFIXES = (".txt", ".md")


def module_docs(names: tuple[str, ...]) -> str:
    """pydoc's plain text of the modules, object addresses (`<object at 0x7f...>`) removed so the text is the
    same in every process."""
    import importlib
    import pydoc
    import re

    text = "\n".join(pydoc.plain(pydoc.render_doc(importlib.import_module(name))) for name in names)
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _python() -> str:
    return f"Python {__import__('platform').python_version()}"


def held_out_text(spec: str | None) -> tuple[str, str]:
    """(text, where it came from)."""
    if spec is None:
        return module_docs(DOC_MODULES), f"{_python()} documentation of {', '.join(DOC_MODULES)} " \
                                         "(pydoc; the default without --text-data)"
    return read_text(spec, "--text-data")


def calibration_text(spec: str | None) -> tuple[str, str]:
    """(text, where it came from): what GPTQ rounds 4-bit weights against (`--calib-data`), never the held-out
    text."""
    if spec is None:
        return module_docs(CALIBRATION_MODULES), f"{_python()} documentation of {', '.join(CALIBRATION_MODULES)} " \
                                                 "(pydoc; the default without --calib-data)"
    return read_text(spec, "--calib-data")


def read_text(spec: str, option: str) -> tuple[str, str]:
    path = Path(spec)
    files = sorted(p for p in path.iterdir() if p.suffix in TEXT_SUFFIXES) if path.is_dir() else [path]
    if not files or not all(p.is_file() for p in files):
        raise UsageError(f"{option} {spec}: no such file, or a folder without .txt/.md files")
    try:
        text = "\n".join(p.read_text(encoding="utf-8") for p in files)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{option} {spec}: not readable UTF-8 text ({exc})") from None
    if not text.strip():
        raise UsageError(f"{option} {spec}: the text is empty")
    return text, f"{spec} ({len(files)} file(s))"


def prompts(spec: str | None) -> tuple[list[str], str]:
    if spec is None:
        return list(DEFAULT_PROMPTS), f"the {len(DEFAULT_PROMPTS)} built-in prompts (no --prompts given)"
    try:
        lines = [line for line in Path(spec).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--prompts {spec}: not readable UTF-8 text ({exc})") from None
    found = []
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("{"):
            try:
                found.append(str(json.loads(line)["prompt"]))
            except (ValueError, KeyError, TypeError):
                raise UsageError(f"--prompts {spec}:{number}: a JSON line needs a \"prompt\" key") from None
        else:
            found.append(line)
    if not found:
        raise UsageError(f"--prompts {spec}: no prompt in the file")
    return found, f"{spec} ({len(found)} prompts)"


def tokenize_text(folder: Path, text_file: Path, out: Path, sequence: int = 128) -> Path:
    """One sample per non-empty line of `text_file`, tokenized by the checkpoint's tokenizer into an .npz."""
    transformers = require("transformers", "hf")
    try:
        lines = [line.strip() for line in Path(text_file).read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--text-data {text_file}: cannot read it as UTF-8 text ({exc})") from None
    texts = [line for line in lines if line]
    if not texts:
        raise UsageError(f"--text-data {text_file}: no text (one sample per line)")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise UsageError(f"{folder}: no usable tokenizer ({str(exc).splitlines()[0][:200]})") from None
    tokens = tokenizer(texts, padding="max_length", truncation=True, max_length=sequence, return_tensors="np")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, input_ids=tokens["input_ids"].astype(np.int64),
             attention_mask=tokens["attention_mask"].astype(np.int64))
    return out


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


def scoring_windows(model, text: str, settings) -> tuple[object, list[Window]]:
    """(the causal LM's tokenizer, the first `settings.max_tokens` tokens of `text` in scoring windows)."""
    transformers = require("transformers", "hf")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(model.folder), local_files_only=True)
    except Exception as exc:  # a damaged tokenizer file fails anywhere inside transformers
        raise UsageError(f"{model.description}: its tokenizer does not load ({str(exc)[:200]})") from None
    ids = np.asarray(tokenizer(text)["input_ids"], dtype=np.int64)[: settings.max_tokens + 1]
    if len(ids) < 2:
        raise UsageError("--text-data: fewer than two tokens of text to score")
    return tokenizer, windows(ids, settings.window, settings.stride)
