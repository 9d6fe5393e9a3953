"""The text a language-model run reads: held-out text for perplexity and the search (`--text-data FILE|DIR`: UTF-8
text files, a folder's `*.txt`/`*.md` in name order; default: Python's own documentation of a few standard modules,
which every Python has offline), calibration text for GPTQ (`--calib-data FILE|DIR`, the same forms; default: the
documentation of other modules), and prompts for continuations (`--prompts FILE`: one per line, or JSONL with a
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
