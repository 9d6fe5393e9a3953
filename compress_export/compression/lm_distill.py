"""Distillation of a pruned causal language model from its FP32 original on calibration text (never the held-out
text): KL divergence of the next-token distributions at temperature T (scaled by T²) plus hidden-state matching
(each student layer's output against the teacher's at the same relative depth, MSE over the teacher's energy),
AdamW with cosine decay, on a GPU when one is there. Seeded, so the same text and settings give the same weights
on the same device."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def batches(windows: list[np.ndarray], size: int = 4) -> list[np.ndarray]:
    """Full-length windows stacked into [size, window] batches (a short last window is left out)."""
    full = [w for w in windows if len(w) == len(windows[0])]
    return [np.stack(full[i:i + size]) for i in range(0, len(full), size)]


def planned_steps(windows: list[np.ndarray], settings) -> int:
    return settings.steps or settings.epochs * len(batches(windows))


def distill_lm(student, teacher, windows: list[np.ndarray], settings, on_step: Callable[[float], None] | None = None):
    """(the trained student, its loss per step). `settings`: compression.distill_torch.DistillSettings."""
    import torch

    from .distill_torch import LARGE_MODEL_LR, resolve_device

    torch.manual_seed(settings.seed)
    device = torch.device(resolve_device(settings.device))
    data = batches(windows)
    if not data:
        from ..errors import UsageError

        raise UsageError("--distill: the calibration text is shorter than one scoring window")
    steps = planned_steps(windows, settings)
    student.to(device).train()
    teacher.to(device).eval()
    lr = settings.lr or LARGE_MODEL_LR  # a pretrained language model forgets at a small network's 1e-3
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    order = np.random.default_rng(settings.seed)
    losses = []
    for step in range(steps):
        if step % len(data) == 0:
            sequence = order.permutation(len(data))
        ids = torch.as_tensor(data[sequence[step % len(data)]], dtype=torch.long, device=device)
        with torch.no_grad():
            target = teacher(input_ids=ids, output_hidden_states=settings.hidden > 0)
        output = student(input_ids=ids, output_hidden_states=settings.hidden > 0)
        loss = _loss(output, target, settings)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(losses[-1])
    student.to("cpu").eval()
    teacher.to("cpu")
    return student, losses, lr


def _loss(output, target, settings):
    import torch.nn.functional as F

    t = settings.temperature
    vocab = output.logits.shape[-1]
    loss = F.kl_div(F.log_softmax(output.logits.reshape(-1, vocab) / t, -1),
                    F.log_softmax(target.logits.reshape(-1, vocab) / t, -1), log_target=True,
                    reduction="batchmean") * t * t
    if settings.hidden > 0:
        ours, theirs = output.hidden_states[1:], target.hidden_states[1:]
        pairs = [(ours[i], theirs[round((i + 1) * len(theirs) / len(ours)) - 1]) for i in range(len(ours))]
        loss = loss + settings.hidden * sum(F.mse_loss(a, b) / b.pow(2).mean().clamp(min=1e-12) for a, b in pairs) \
            / len(pairs)
    return loss
