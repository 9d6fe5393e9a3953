"""Hidden-state matching for distillation: each block of the student's layer stack learns the output of the
teacher block at the same relative depth (student block j of n against teacher block round((j+1) m / n) - 1 of m),
besides the final outputs. A pruned transformer keeps its hidden width, so every block has a partner; pairs whose
shapes differ (a pruned CNN's channels) are left out."""

from __future__ import annotations

from .student import layer_stack


def block_pairs(student, teacher) -> list[tuple[object, object]]:
    mine, theirs = layer_stack(student), layer_stack(teacher)
    if mine is None or theirs is None:
        return []
    s_blocks, t_blocks = list(mine[2]), list(theirs[2])
    if len(s_blocks) > len(t_blocks):
        return []
    return [(block, t_blocks[round((j + 1) * len(t_blocks) / len(s_blocks)) - 1]) for j, block in enumerate(s_blocks)]


def _first_tensor(value):
    import torch

    while isinstance(value, tuple | list) and value:
        value = value[0]
    return value if isinstance(value, torch.Tensor) else None


class HiddenStates:
    """Forward hooks that keep the paired blocks' outputs of the last forward pass; `loss()` compares them."""

    def __init__(self, student, teacher):
        self.pairs = block_pairs(student, teacher)
        self.seen: dict[int, object] = {}
        self.hooks = [block.register_forward_hook(self._keep) for pair in self.pairs for block in pair]

    def _keep(self, block, _inputs, output) -> None:
        self.seen[id(block)] = _first_tensor(output)

    def loss(self):
        """Mean over pairs of MSE scaled by the teacher's energy; 0 when no pair matched in shape."""
        terms = []
        for mine, theirs in self.pairs:
            got, want = self.seen.get(id(mine)), self.seen.get(id(theirs))
            if got is not None and want is not None and got.shape == want.shape:
                want = want.detach()
                terms.append((got - want).pow(2).mean() / want.pow(2).mean().clamp(min=1e-12))
        self.seen.clear()
        return sum(terms) / len(terms) if terms else 0.0

    def close(self) -> None:
        for hook in self.hooks:
            hook.remove()
