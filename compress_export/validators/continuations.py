"""Continuations and speed of decoder folders, measured in child processes (generation_worker.py): the FP32 model and
each candidate take turns prompt by prompt in one process; peak RSS each in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..util.measure_lock import measuring
from .bench import percentile_ms


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 32
    long_tokens: int = 512  # the long prompt of the time-to-first-token pair


def _worker(request: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="ce-llm-") as tmp:
        path = Path(tmp) / "request.json"
        path.write_text(json.dumps(request))
        with measuring():
            done = subprocess.run([sys.executable, "-m", "compress_export.validators.generation_worker", str(path)],
                                  capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportError(f"onnxruntime-genai could not generate with {', '.join(request['models'])}: {tail[:300]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def generate(folders: list[Path], prompts: list[str], long_prompt: str, settings: GenerationSettings,
             long_rounds: int = 3) -> list[dict]:
    """Per folder: continuations (text and ids) and speed (see `speed`); the long prompt's time to first token
    from `long_rounds` turns (0: not measured)."""
    request = {"models": [str(f) for f in folders], "prompts": prompts, "max_new_tokens": settings.max_new_tokens,
               "long_prompt": long_prompt, "long_tokens": settings.long_tokens, "long_rounds": long_rounds}
    return [{**result, "speed": speed(result)} for result in _worker(request)["results"]]


def peak_rss_mb(folder: Path, prompt: str, settings: GenerationSettings) -> float:
    request = {"models": [str(folder)], "prompts": [prompt], "max_new_tokens": settings.max_new_tokens,
               "memory": True}
    return _worker(request)["peak_rss_mb"]


def speed(result: dict) -> dict:
    steps = sorted(1000.0 * s for s in result["token_s"])
    short = float(np.median(result["ttft_short_s"])) * 1000.0 if result["ttft_short_s"] else None
    long = float(np.median(result["ttft_long_s"])) * 1000.0 if result["ttft_long_s"] else None
    return {
        "ttft_short_ms": short,
        "ttft_short_prompt_tokens": int(np.median(result["prompt_tokens"])) if result["prompt_tokens"] else None,
        "ttft_long_ms": long,
        "ttft_long_prompt_tokens": result.get("long_prompt_tokens"),
        "decode_tokens_per_s": 1000.0 * len(steps) / sum(steps) if steps else None,
        "token_p50_ms": percentile_ms(steps, 50) if steps else None,
        "token_p95_ms": percentile_ms(steps, 95) if steps else None,
        "token_p99_ms": percentile_ms(steps, 99) if steps else None,
        "throughput_tokens_per_s": result["generated"] / result["seconds"] if result["seconds"] else None,
        "generated_tokens": result["generated"],
    }
