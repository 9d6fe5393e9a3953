"""A decoder against the FP32 one: its scores on the held-out windows and its continuations, through the task's
metrics; its speed beside FP32's (and plain 4-bit's, where the search kept matrices above 4 bits, to price them);
size and peak RSS."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runtimes.onnxruntime_genai import folder_bytes
from .continuations import generate, peak_rss_mb
from .token_scores import score

CONTINUATION_KEYS = ("continuations", "continuation_ids")


def perplexity(scores: dict) -> float:
    return float(np.exp(np.mean(scores["nll"]))) if len(scores["nll"]) else float("nan")


def generation_metrics(reference_scores: dict, candidate_scores: dict, reference: dict, candidate: dict) -> dict:
    """The text-generation task's metrics: per-token scores on the held-out windows, then the continuations."""
    from ..metrics import get_metrics
    from ..metrics.suite import MetricSuite
    from ..metrics.tasks import TASKS

    suite = MetricSuite([], get_metrics(TASKS["text-generation"].metrics))
    suite.update(reference_scores, candidate_scores, None)
    suite.update({key: reference[key] for key in CONTINUATION_KEYS},
                 {key: candidate[key] for key in CONTINUATION_KEYS}, None)
    return suite.metrics()


def measure(text, fp32: Path, folder: Path, plain: Path | None, memory: bool = True
            ) -> tuple[dict, list[dict], dict]:
    """A decoder folder against the FP32 one on the run's HeldOutText: (metrics, generations [FP32, this, plain
    4-bit?], bench). `plain`: a plain 4-bit build to price the search's promotions; `memory`: peak RSS too."""
    compared = [fp32, folder] + ([plain] if plain is not None and plain.exists() else [])
    settings = text.settings.generation
    generated = generate(compared, text.prompts, text.long_prompt, settings)
    metrics = generation_metrics(text.reference, score(folder, text.spans), generated[0], generated[1])
    size, fp32_size = folder_bytes(folder), folder_bytes(fp32)
    bench = {"reference": {**generated[0]["speed"], "size_bytes": fp32_size},
             "candidate": {**generated[1]["speed"], "size_bytes": size}}
    before, after = bench["reference"]["decode_tokens_per_s"], bench["candidate"]["decode_tokens_per_s"]
    bench["ratios"] = {"size": size / fp32_size, **({"speedup_decode": after / before} if before and after else {})}
    if len(generated) > 2:
        bench["plain_int4"] = {**generated[2]["speed"], "size_bytes": folder_bytes(plain),
                               "perplexity": perplexity(score(plain, text.spans))}
    if memory:
        bench["reference"]["peak_rss_mb"] = peak_rss_mb(fp32, text.prompts[0], settings)
        bench["candidate"]["peak_rss_mb"] = peak_rss_mb(folder, text.prompts[0], settings)
    return metrics, generated, bench
