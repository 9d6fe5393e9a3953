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


def test_hidden_states_pair_blocks_at_the_same_relative_depth_and_pull_them_together():
    import torch

    from compress_export.compression.hidden_states import HiddenStates, block_pairs

    class Stack(torch.nn.Module):
        def __init__(self, depth):
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(depth))

        def forward(self, x):
            for layer in self.layers:
                x = torch.tanh(layer(x))
            return x

    torch.manual_seed(0)
    teacher, student = Stack(6), Stack(3)
    pairs = block_pairs(student, teacher)
    assert [list(teacher.layers).index(t) for _, t in pairs] == [1, 3, 5]
    assert block_pairs(teacher, student) == []  # a deeper student has no partner for every block
    hidden = HiddenStates(student, teacher)
    x = torch.randn(8, 4)
    teacher(x), student(x)
    first = hidden.loss()
    assert first > 0
    hidden.close()
    same = HiddenStates(teacher, teacher)
    teacher(x)
    assert float(same.loss()) == 0.0
    same.close()
    assert not teacher.layers[0]._forward_hooks  # closing removes the hooks
