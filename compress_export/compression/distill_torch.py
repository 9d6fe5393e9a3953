"""Knowledge distillation in PyTorch: a student (pruned, or smaller) learns the original model's outputs on
unlabeled data (labels, where the data has them, add the task loss), on a GPU when one is there."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..data.calibration_data import CalibrationData
from .hidden_states import HiddenStates
from .losses import distillation_loss
from .training import optimizer_step, run_steps, total_steps


@dataclass(frozen=True)
class DistillSettings:
    epochs: int = 30
    steps: int | None = None
    lr: float | None = None  # by model size: SMALL_MODEL_LR below SMALL_MODEL parameters, else LARGE_MODEL_LR
    temperature: float = 2.0
    alpha: float = 0.5
    seed: int = 0
    device: str = "auto"  # auto: CUDA when torch sees a GPU
    hidden: float = 1.0  # weight of hidden-state matching (the layer stacks' block outputs) beside the outputs


SMALL_MODEL = 5_000_000
SMALL_MODEL_LR, LARGE_MODEL_LR = 1e-3, 1e-4  # a pruned CNN recovers at 1e-3; a pretrained transformer forgets


def learning_rate(module, settings: DistillSettings) -> float:
    if settings.lr is not None:
        return settings.lr
    return SMALL_MODEL_LR if sum(p.numel() for p in module.parameters()) < SMALL_MODEL else LARGE_MODEL_LR


@dataclass
class DistillResult:
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    lr: float = 0.0
    hidden_pairs: int = 0  # block outputs matched beside the final outputs


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        from ..errors import UsageError

        raise UsageError("--device cuda: torch sees no CUDA device here (use --device auto or cpu)")
    return device


def distill(student, teacher, forward: Callable, data: CalibrationData, settings: DistillSettings,
            on_step: Callable[[float], None] | None = None, total: int | None = None,
            constrain: Callable[[object], None] | None = None) -> tuple[object, DistillResult]:
    """Train a copy of `student` to match `teacher`; both stay untouched. `forward(module, feeds)` returns the
    outputs by name on the device the modules are on. The trained copy comes back on the CPU, in eval mode.
    `total`: the step count when the caller already has it (else from the settings and the data).
    `constrain(module)`: called after every step (to keep a sparsity mask, say)."""
    import torch

    torch.manual_seed(settings.seed)
    device = resolve_device(settings.device)
    teacher = copy.deepcopy(teacher).to(device).eval()
    student = copy.deepcopy(student).to(device).train()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    weights = [p for p in student.parameters() if p.dtype.is_floating_point]
    for parameter in weights:
        parameter.requires_grad_(True)
    result = DistillResult(device=device, lr=learning_rate(student, settings))
    optimizer = torch.optim.AdamW(weights, lr=result.lr, weight_decay=0.0)
    start = time.perf_counter()
    total = total or total_steps(settings.steps, settings.epochs, data)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total, 1))  # settles, not jitters

    hidden = HiddenStates(student, teacher) if settings.hidden > 0 else None

    def step(feeds, labels) -> float:
        with torch.no_grad():
            expected = forward(teacher, feeds)
        labels = None if labels is None else torch.as_tensor(labels).to(device)
        loss = distillation_loss(forward(student, feeds), expected, labels, settings.temperature, settings.alpha)
        if hidden is not None:
            loss = loss + settings.hidden * hidden.loss()
        value = optimizer_step(optimizer, loss, schedule)
        if constrain is not None:
            constrain(student)
        return value

    try:
        result.losses = run_steps(data, total, step, on_step)
    finally:
        if hidden is not None:
            hidden.close()
    result.hidden_pairs = len(hidden.pairs) if hidden is not None else 0
    result.steps = len(result.losses)
    student = student.cpu().eval()
    for parameter in student.parameters():
        parameter.requires_grad_(False)
    result.seconds = time.perf_counter() - start
    return student, result


def held_out_cosine(student, teacher, forward: Callable, data: CalibrationData) -> float:
    """Mean per-sample cosine between the student's and the teacher's outputs (all outputs, flattened)."""
    import torch

    cosines = []
    with torch.no_grad():
        for feeds in data.batches():
            got, want = forward(student, feeds), forward(teacher, feeds)
            for name, target in want.items():
                a = got[name].reshape(len(target), -1).double()
                b = target.reshape(len(target), -1).double()
                cosines.extend(torch.nn.functional.cosine_similarity(a, b, dim=1).tolist())
    return float(np.mean(cosines)) if cosines else float("nan")
