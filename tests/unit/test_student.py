"""A smaller student: every K-th block of the layer stack, starting from the teacher's weights; a factory's
student takes every teacher tensor whose name and shape it shares."""

import copy

import pytest
import torch
from torch import nn

from compress_export.compression.student import initialise_from, keep_every, layer_stack
from compress_export.errors import UsageError


class Stacked(nn.Module):
    def __init__(self, depth=6, width=8):
        super().__init__()
        self.embed = nn.Linear(4, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(depth))
        self.heads = nn.ModuleList([nn.Linear(width, 2), nn.Linear(width, 3)])  # shorter, mixed shapes

    def forward(self, x):
        y = self.embed(x)
        for block in self.blocks:
            y = y + block(y)
        return self.heads[0](y)


def test_every_kth_block_is_kept_with_the_teachers_weights():
    torch.manual_seed(0)
    teacher = Stacked()
    student = copy.deepcopy(teacher)
    assert layer_stack(student)[1] == "blocks"
    assert keep_every(student, 2) == (6, 3)
    for kept, original in zip(student.blocks, list(teacher.blocks)[::2], strict=True):
        assert torch.equal(kept[0].weight, original[0].weight)
    assert student(torch.randn(5, 4)).shape == (5, 2)
    with pytest.raises(UsageError, match="K > 1"):
        keep_every(copy.deepcopy(teacher), 1)
    with pytest.raises(UsageError, match="repeated blocks"):
        keep_every(nn.Sequential(nn.Linear(2, 2)), 2)


def test_a_factory_student_starts_from_matching_teacher_tensors():
    torch.manual_seed(0)
    teacher, student = Stacked(depth=4, width=8), Stacked(depth=2, width=8)
    copied = initialise_from(student, teacher)
    assert copied == len(student.state_dict())  # same width: every tensor of the shallower student matches
    assert torch.equal(student.blocks[1][0].weight, teacher.blocks[1][0].weight)
    narrow = Stacked(depth=2, width=6)
    assert initialise_from(narrow, teacher) == 2  # narrower: only the two heads' biases share a shape
    assert torch.equal(narrow.heads[1].bias, teacher.heads[1].bias)
