"""Tasks: what a model does, which metrics judge it, and how to recognise it from its outputs.
A new task is one entry in TASKS (its metrics come from the metric registry)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

RESOURCES = ("flops", "layer_error", "second_runtime")


@dataclass(frozen=True)
class Task:
    """`metrics`: what judges it; `family`: which stage list runs it and which targets it takes ("tensor": a network
    of fixed inputs, "generation": a causal language model)."""

    name: str
    summary: str
    metrics: tuple[str, ...]
    family: str = "tensor"


# What the user sees of an output, where its shape says it: each applies only to outputs of its layout.
OUTPUT_TASK_METRICS = ("detections", "masks", "sequences")

TASKS: dict[str, Task] = {
    "classification": Task("classification", "(batch, classes) logits; accuracy where labels exist",
                           ("accuracy", "top1", "cosine", "decisions", "sqnr", "abs_error", *RESOURCES)),
    "detection": Task("detection", "YOLO-layout boxes and class scores: box/class agreement (F1, top box)",
                      ("detections", "cosine", "decisions", "sqnr", "abs_error", *RESOURCES)),
    "segmentation": Task("segmentation", "probability maps (text detectors, segmenters): mask IoU",
                         ("masks", "cosine", "decisions", "sqnr", "abs_error", *RESOURCES)),
    "sequence": Task("sequence", "per-step symbol distributions (CTC recognizers): decoded sequence agreement",
                     ("sequences", "cosine", "decisions", "sqnr", "abs_error", *RESOURCES)),
    "embedding": Task("embedding", "embeddings, features or regression outputs",
                      ("cosine", "decisions", *OUTPUT_TASK_METRICS, "sqnr", "abs_error", *RESOURCES)),
    "image-generation": Task("image-generation", "a generator (or a denoiser in a sampler) making images: PSNR and "
                             "SSIM of its images against the FP32 generator's from the same inputs, FID and KID of "
                             "the two sets, the error after every sampler call",
                             ("psnr", "ssim", "fid", "kid", "feature_distance", "sampler_steps", "cosine", "sqnr",
                              "abs_error", *RESOURCES)),
    "text-generation": Task("text-generation", "a causal language model (Hugging Face folder or GGUF): perplexity, "
                            "next-token agreement, BLEU/chrF and exact match of continuations against FP32",
                            ("perplexity", "token_agreement", "bleu", "chrf", "exact_match"), family="generation"),
}


def detect_task(outputs: dict) -> Task:
    """classification when an output is (batch, classes) logits; detection, segmentation or sequence when an
    output has that layout; else embedding (which still checks any output of those layouts)."""
    from .accuracy import classifier_output
    from .detections import yolo_layout
    from .masks import probability_map
    from .sequences import step_distributions

    if classifier_output(outputs):
        return TASKS["classification"]
    arrays = list(outputs.values())
    for name, applies in (("detection", lambda a: yolo_layout(a) is not None), ("sequence", step_distributions),
                          ("segmentation", probability_map)):
        if any(getattr(array, "ndim", 0) and applies(array) for array in arrays):
            return TASKS[name]
    return TASKS["embedding"]


def get_task(name: str | None, outputs: dict) -> Task:
    if name in (None, "auto"):
        return detect_task(outputs)
    try:
        return TASKS[name]
    except KeyError:
        raise UsageError(f"unknown task {name!r}; supported: auto, {', '.join(TASKS)}") from None
