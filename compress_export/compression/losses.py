"""The distillation loss in PyTorch: what a student (fake-quantized, pruned or smaller) minimises
against its teacher. KL with temperature on classifier logits, plus cross-entropy weighted by `alpha`
when labels exist; MSE (scaled by the teacher's energy) plus cosine distance otherwise."""

from __future__ import annotations


def distillation_loss(student: dict, teacher: dict, labels=None, temperature: float = 2.0, alpha: float = 0.5):
    import torch
    import torch.nn.functional as F  # noqa: N812

    total = 0.0
    for name, target in teacher.items():
        output = student[name]
        if labels is not None and output.ndim == 2 and output.shape[1] > 1:
            t = temperature
            soft = F.kl_div(F.log_softmax(output / t, dim=1), F.softmax(target / t, dim=1),
                            reduction="batchmean") * t * t
            hard = F.cross_entropy(output, torch.as_tensor(labels, dtype=torch.long))
            total = total + (1 - alpha) * soft + alpha * hard
        else:
            flat_out, flat_target = output.reshape(len(output), -1), target.reshape(len(target), -1)
            norm = flat_target.pow(2).mean().clamp(min=1e-12)
            cosine = F.cosine_similarity(flat_out, flat_target, dim=1).mean()
            total = total + (flat_out - flat_target).pow(2).mean() / norm + (1 - cosine)
    return total
