"""Structured pruning through torch-pruning's dependency graph: graphs with residuals, concats and depthwise
convolutions stay shape-correct and really shrink, the data-driven importance picks its own channels, the
model's output layer keeps its width, and distillation really changes the weights and recovers the outputs."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from compress_export.compression.distill_torch import DistillSettings, distill, held_out_cosine
from compress_export.compression.prune_torch import prunable_layers, prune
from compress_export.data.calibration_data import CalibrationData, Shard
from compress_export.errors import UsageError
from compress_export.specs import TensorSpec


class Branchy(nn.Module):
    """A residual block, a depthwise convolution and a concat, then a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(16, 32, 1), nn.ReLU(), nn.Conv2d(32, 16, 1))
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.side = nn.Conv2d(16, 8, 1)
        self.head = nn.Linear(24, 5)

    def forward(self, x):
        y = torch.relu(self.stem(x))
        y = y + self.body(y)  # residual: stem and body's last conv are coupled
        y = torch.relu(self.depthwise(y))
        y = torch.cat([y, self.side(y)], dim=1)  # concat: the head's inputs follow both branches
        return self.head(y.mean(dim=(2, 3)))


def _call(module, inputs):
    return module(*inputs.values())


def _example():
    return {"x": torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))}


def test_pruning_keeps_residual_concat_and_depthwise_graphs_shape_correct():
    example = _example()
    model, counts = prune(Branchy().eval(), example, _call, 0.5, "magnitude")
    assert counts["parameters_after"] < 0.6 * counts["parameters_before"]
    assert model.depthwise.groups == model.depthwise.in_channels == model.depthwise.out_channels < 16
    assert model.stem.out_channels == model.body[2].out_channels  # the residual's two sides match
    assert model.head.in_features == model.depthwise.out_channels + model.side.out_channels
    assert model.head.out_features == 5  # the output layer keeps its width
    assert model(example["x"]).shape == (4, 5)


def test_output_convolutions_and_square_linears_are_not_roots():
    class Segmenter(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 4, 1)
            self.square = nn.Linear(8, 8)

        def forward(self, x):
            return self.b(torch.relu(self.a(x))), self.square(x.mean(dim=(1, 2)).repeat(1, 1))

    model = Segmenter()
    roots, kept = prunable_layers(model, {"x": torch.randn(2, 3, 8, 8)}, _call)
    assert roots == [model.a] and set(map(id, kept)) == {id(model.b), id(model.square)}


def test_taylor_importance_follows_the_data_not_the_weights():
    def channels_kept(importance: str) -> set:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        with torch.no_grad():  # large weights on channels the data never excites (input feature 3 is always 0)
            model[0].weight[:8, :3] *= 0.01
            model[0].weight[:8, 3] = 50.0
        x = torch.randn(64, 4)
        x[:, 3] = 0
        model, _ = prune(model, {"x": x}, _call, 0.5, importance, lambda out: out.pow(2).mean())
        return sum(float(v) == 50.0 for v in model[0].weight[:, 3].detach())

    assert channels_kept("magnitude") == 8  # weight norm keeps all eight big, dead channels
    assert channels_kept("taylor") <= 2  # the gradient on real data drops (nearly) all of them


def test_ratio_outside_zero_one_is_refused():
    with pytest.raises(UsageError, match="between 0 and 1"):
        prune(Branchy(), _example(), _call, 1.0, "magnitude")


def test_distillation_changes_the_weights_and_recovers_the_teacher(tmp_path):
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3)).eval()
    student, _ = prune(copy.deepcopy(teacher), {"x": torch.randn(8, 6)}, _call, 0.5, "magnitude")
    x = np.random.default_rng(0).standard_normal((256, 6)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x)
    spec = (TensorSpec("x", ("batch", 6), "float32"),)
    data = CalibrationData((Shard(tmp_path / "train.npz", tuple(range(256))),), spec, batch_size=32)

    def forward(module, feeds):
        return {"output": module(torch.from_numpy(feeds["x"]))}

    before = held_out_cosine(student, teacher, forward, data)
    trained, result = distill(student, teacher, forward, data, DistillSettings(epochs=20, device="cpu"))
    assert not torch.equal(trained[0].weight, student[0].weight)  # the original student is untouched, the copy moved
    assert result.losses[-1] < result.losses[0] and result.lr == 1e-3
    assert before < 0.95 and held_out_cosine(trained, teacher, forward, data) > max(before + 0.1, 0.95)


def test_each_kind_of_layer_takes_its_own_ratio_and_the_others_stay_whole():
    def net():
        return nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 6 * 6, 32), nn.ReLU(),
                             nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 4)).eval()

    example = {"x": torch.randn(2, 3, 8, 8)}
    model, counts = prune(net(), example, _call, 0.5, "magnitude", kinds={"ffn": 0.25})
    assert model[0].out_channels == 16 and model[5].out_features == 96  # conv untouched, 25% of the FFN
    assert counts["kinds"] == {"ffn": 0.25} and model(example["x"]).shape == (2, 4)
    model, _ = prune(net(), example, _call, 0.5, "magnitude", kinds={"conv": 0.5, "ffn": 0.75})
    assert model[0].out_channels == 8 and model[5].out_features == 32
    with pytest.raises(UsageError, match="no conv"):
        prune(nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)), {"x": torch.randn(2, 4)}, _call, 0.5,
              "magnitude", kinds={"conv": 0.5})
