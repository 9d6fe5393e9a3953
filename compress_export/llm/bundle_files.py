"""A language-model bundle's files besides the decoder folder: the reference data `validate` re-checks with (the
scored windows, FP32 per-token scores, prompts and FP32 continuations, the long prompt's text), the reports, the
plot, the recipe and the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..bundle import write_manifest
from .build import MODEL_FILE

LONG_PROMPT_CHARS = 20_000  # enough text for the long time-to-first-token prompt


def write_bundle(bundle: Path, job, report, fp32: dict) -> None:
    from .. import __version__
    from .pipeline import MODEL_DIR
    from .report import plot_generation_tradeoff

    write_reference(bundle, job, fp32)
    (bundle / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (bundle / "report.md").write_text(report.to_markdown())
    plot_generation_tradeoff([report], bundle / "tradeoff.png")
    if job.config.run_recipe:
        from ..recipe_file import RECIPE_FILE, recipe_yaml

        (bundle / RECIPE_FILE).write_text(recipe_yaml(dict(job.config.run_recipe)))
    write_manifest(bundle, {"target": report.target, "task": "text-generation", "source": job.model.describe(),
                            "artifact": {"path": f"{MODEL_DIR}/{MODEL_FILE}", "runtime": "onnxruntime-genai"},
                            "gates": job.config.gates.to_dict(), "llm": job.settings.to_dict(),
                            "seed": job.config.seed, "compress_export_version": __version__})


def write_reference(bundle: Path, job, fp32: dict) -> None:
    """What `validate` re-checks elsewhere: the scored token ids, FP32 per-token scores and continuations."""
    folder = bundle / "reference"
    folder.mkdir()
    np.savez(folder / "heldout.npz", **{f"window_{i}": span.ids for i, span in enumerate(job.spans)},
             first=np.asarray([span.first for span in job.spans], np.int64), nll=job.reference["nll"],
             top1=job.reference["top1"])
    (folder / "continuations.json").write_text(json.dumps(
        {"prompts": job.prompts, "continuations": fp32["continuations"], "continuation_ids": fp32["continuation_ids"],
         "max_new_tokens": job.settings.generation.max_new_tokens}, indent=2) + "\n")
    (folder / "long_prompt.txt").write_text(job.long_prompt[:LONG_PROMPT_CHARS], encoding="utf-8")
