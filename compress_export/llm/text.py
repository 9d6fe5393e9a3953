"""The text a language-model run reads: held-out text for perplexity and the search (`--text-data FILE|DIR`: UTF-8
text files, a folder's `*.txt`/`*.md` in name order; default: Python's own documentation of a few standard modules,
which every Python has offline), and prompts for continuations (`--prompts FILE`: one per line, or JSONL with a
"prompt" key; default: DEFAULT_PROMPTS). The report says which were used."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UsageError

DEFAULT_PROMPTS = (
    "The capital of France is",
    "def fibonacci(n):",
    "The sky looks blue during the day because",
    "The three most important things to know about photosynthesis are",
    "Once upon a time, in a small village by the sea,",
)
DOC_MODULES = ("collections", "argparse", "json", "pathlib")
TEXT_SUFFIXES = (".txt", ".md")


def held_out_text(spec: str | None) -> tuple[str, str]:
    """(text, where it came from)."""
    if spec is None:
        import importlib
        import pydoc

        text = "\n".join(pydoc.plain(pydoc.render_doc(importlib.import_module(name))) for name in DOC_MODULES)
        return text, f"Python {__import__('platform').python_version()} documentation of {', '.join(DOC_MODULES)} " \
                     "(pydoc; the default without --text-data)"
    path = Path(spec)
    files = sorted(p for p in path.iterdir() if p.suffix in TEXT_SUFFIXES) if path.is_dir() else [path]
    if not files or not all(p.is_file() for p in files):
        raise UsageError(f"--text-data {spec}: no such file, or a folder without .txt/.md files")
    try:
        text = "\n".join(p.read_text(encoding="utf-8") for p in files)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--text-data {spec}: not readable UTF-8 text ({exc})") from None
    if not text.strip():
        raise UsageError(f"--text-data {spec}: the text is empty")
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
