"""`validate` of a language model's bundle: the same held-out windows scored again by the bundle's decoder and the
same prompts continued, against the FP32 numbers and continuations recorded at export; speed measured here."""

from __future__ import annotations

import json
from pathlib import Path

from ..data.array_files import read_arrays
from ..data.text import Window
from ..errors import UsageError
from ..report.report import Report
from ..runtimes.machine import platform_info
from ..runtimes.onnxruntime_genai import folder_bytes, model_folder
from .continuations import GenerationSettings, generate
from .generation_measure import generation_metrics
from .token_scores import score

RECORDED_KEYS = ("prompts", "continuations", "continuation_ids", "max_new_tokens")


def recorded_windows(folder: Path) -> tuple[list[Window], dict]:
    path = folder / "reference" / "heldout.npz"
    arrays = read_arrays(path)
    try:
        spans = [Window(arrays[f"window_{i}"], int(start)) for i, start in enumerate(arrays["first"])]
        return spans, {"nll": arrays["nll"], "top1": arrays["top1"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: not the scored windows a bundle records ({exc})") from None


def recorded_generations(folder: Path) -> tuple[dict, str]:
    """The prompts, FP32 continuations and generation length recorded at export, and the long prompt's text."""
    path = folder / "reference" / "continuations.json"
    recorded = _read(path, json.loads)
    missing = [key for key in RECORDED_KEYS if not isinstance(recorded, dict) or key not in recorded]
    if missing:
        raise UsageError(f"{path}: no {', '.join(missing)}")
    return recorded, _read(folder / "reference" / "long_prompt.txt", str)


def _read(path: Path, parse):
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise UsageError(f"{path}: does not read ({exc})") from None


def check_bundle(folder: Path, manifest: dict, target, limits, bench, require_engine: bool) -> Report:
    artifact = manifest["artifact"]
    model = model_folder(folder / artifact["path"])
    spans, reference = recorded_windows(folder)
    recorded, long_prompt = recorded_generations(folder)
    settings = GenerationSettings(max_new_tokens=recorded["max_new_tokens"],
                                  long_tokens=manifest.get("llm", {}).get("long_prompt_tokens", 512))
    (here,) = generate([model], recorded["prompts"], long_prompt, settings)
    metrics = generation_metrics(reference, score(model, spans), recorded, here)
    context = {"bundle": str(folder), "source": manifest.get("source", {}), "task": manifest["task"],
               "machine": platform_info(), "exported_on": manifest.get("platform", {}),
               "data": {"held_out": "the bundle's reference/ windows and prompts"}}
    info = {"path": artifact["path"], "size_bytes": folder_bytes(model), "runtime": artifact["runtime"],
            "sha256": manifest["files"].get(artifact["path"])}
    report = Report(manifest["target"], limits, info, metrics=metrics, context=context)
    if bench is not None:
        report.bench = {"candidate": {**here["speed"], "size_bytes": info["size_bytes"]}}
    return report
