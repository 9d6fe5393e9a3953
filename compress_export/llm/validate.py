"""`compress-export validate BUNDLE` for a language-model bundle: the same held-out windows scored again by the
bundle's decoder, and the same prompts continued, against the FP32 numbers and continuations recorded at export;
speed measured here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..bundle import platform_info
from ..metrics.gates import Gates
from .build import MODEL_FILE, folder_bytes
from .generation import GenerationSettings, generate
from .measure import generation_metrics
from .pipeline import MODEL_DIR
from .scoring import Window, score


def recorded_windows(folder: Path) -> tuple[list[Window], dict]:
    with np.load(folder / "reference" / "heldout.npz") as npz:
        first = npz["first"]
        spans = [Window(npz[f"window_{i}"], int(start)) for i, start in enumerate(first)]
        return spans, {"nll": npz["nll"], "top1": npz["top1"]}


def validate_language_model(folder: Path, manifest: dict, limits: Gates, bench: bool = True):
    from ..report import Report

    model = folder / MODEL_DIR
    spans, reference = recorded_windows(folder)
    recorded = json.loads((folder / "reference" / "continuations.json").read_text())
    long_prompt = (folder / "reference" / "long_prompt.txt").read_text(encoding="utf-8")
    settings = GenerationSettings(max_new_tokens=recorded["max_new_tokens"],
                                  long_tokens=manifest.get("llm", {}).get("long_prompt_tokens", 512))
    (here,) = generate([model], recorded["prompts"], long_prompt, settings)
    metrics = generation_metrics(reference, score(model, spans), recorded, here)
    context = {"bundle": str(folder), "source": manifest.get("source", {}), "task": "text-generation",
               "machine": platform_info(), "exported_on": manifest.get("platform", {}),
               "data": {"held_out": "the bundle's reference/ windows and prompts"}}
    info = {"path": f"{MODEL_DIR}/{MODEL_FILE}", "size_bytes": folder_bytes(model), "runtime": "onnxruntime-genai",
            "sha256": manifest["files"].get(f"{MODEL_DIR}/{MODEL_FILE}")}
    report = Report(manifest["target"], limits, info, metrics=metrics, context=context)
    if bench:
        report.bench = {"candidate": {**here["speed"], "size_bytes": info["size_bytes"]}}
        recorded_report = folder / "report.json"
        if recorded_report.is_file():
            report.bench["recorded"] = json.loads(recorded_report.read_text()).get("bench", {}).get("candidate")
    return report
