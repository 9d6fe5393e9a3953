"""Pruning on the couplings real CNNs have (residual adds, concats of unequal branches, C2f's chunk + concat, FPN
upsample + concat, depthwise and grouped convolutions, squeeze-excitation, flatten/view into Linear): the pruned
model runs with the original's output shapes and really shrinks; channels that carry nothing are the ones that go
and the outputs stay exactly the same (the index mapping through concat and flatten is right); a coupling the
model's own code cannot follow is left whole and named, never a traceback."""

import pytest
import torch
from torch import nn

from compress_export.compression.prune_torch import prune
from compress_export.errors import UsageError
from tests.pruning_blocks import BLOCKS, HeldOutCnn


def _call(module, inputs):
    return module(*inputs.values())


def _image(batch=2):
    return {"x": torch.randn(batch, 3, 16, 16, generator=torch.Generator().manual_seed(0))}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_each_topology_prunes_to_the_original_output_shapes(name):
    torch.manual_seed(0)
    model = BLOCKS[name]().eval()
    example = _image()
    pruned, counts = prune(model, example, _call, 0.5, "magnitude")
    assert pruned(example["x"]).shape == model(example["x"]).shape
    assert counts["parameters_after"] < 0.6 * counts["parameters_before"]
    assert counts["left_whole"] == []
    assert sum(p.numel() for p in model.parameters()) == counts["parameters_before"]  # the original is untouched


def test_chunked_pieces_stay_equal_and_every_piece_loses_the_same_channels():
    torch.manual_seed(0)
    pruned, _ = prune(BLOCKS["c2f + fpn"]().eval(), _image(), _call, 0.5, "magnitude")
    half = pruned.c2f.cv1[0].out_channels // 2
    assert half < 8 and all(block[0][0].in_channels == half for block in pruned.c2f.m)
    assert pruned.c2f.cv2[0].in_channels == 4 * half  # the concat of both halves and two bottleneck outputs


def _dead_channels(model: HeldOutCnn, stream: list[int], side: list[int]) -> None:
    """Channels whose every weight in and out is zero: removing them cannot change the outputs."""
    spatial = model.fc.in_features // (model.pw[0].out_channels + model.branch[0].out_channels)
    with torch.no_grad():
        for c in stream:
            for layer in (model.stem[0], model.stem[1], model.dw[0], model.dw[1], model.pw[0], model.pw[1]):
                layer.weight[c] = 0
                if layer.bias is not None:
                    layer.bias[c] = 0
            model.pw[0].weight[:, c] = 0
            model.branch[0].weight[:, c] = 0
            model.fc.weight[:, c * spatial:(c + 1) * spatial] = 0
        offset = model.pw[0].out_channels
        for c in side:
            model.branch[0].weight[c] = 0
            model.branch[0].bias[c] = 0
            model.fc.weight[:, (offset + c) * spatial:(offset + c + 1) * spatial] = 0


def test_dead_channels_go_and_the_outputs_stay_exact_through_concat_and_flatten():
    torch.manual_seed(0)
    model = HeldOutCnn().eval()
    _dead_channels(model, stream=list(range(8, 16)), side=[1, 3])
    example = _image(4)
    pruned, _ = prune(model, example, _call, 0.5, "magnitude")
    assert pruned.stem[0].out_channels == 8 and pruned.branch[0].out_channels == 2 and pruned.fc.in_features == 40
    torch.testing.assert_close(pruned(example["x"]), model(example["x"]), rtol=1e-5, atol=1e-6)


def test_a_split_the_code_fixes_in_size_is_left_whole_and_named():
    class FixedSplit(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Conv2d(3, 16, 1), nn.Conv2d(16, 8, 1), nn.Conv2d(16, 8, 1)
            self.head = nn.Conv2d(8, 2, 1)
            self.other = nn.Conv2d(3, 12, 1)
            self.out = nn.Conv2d(12, 2, 1)

        def forward(self, x):
            left, right = self.a(x).split([4, 12], dim=1)  # sizes written in the code
            y = torch.cat([left, right], 1)
            return self.head(self.b(y) + self.c(y)) + self.out(torch.relu(self.other(x)))

    torch.manual_seed(0)
    model = FixedSplit().eval()
    pruned, counts = prune(model, _image(), _call, 0.5, "magnitude")
    assert counts["left_whole"] == ["a"] and pruned.a.out_channels == 16
    assert pruned.other.out_channels == 6  # the rest is still pruned
    assert pruned(_image()["x"]).shape == model(_image()["x"]).shape


def test_nothing_prunable_consistently_is_one_usage_error():
    class OnlyFixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 16, 1), nn.Conv2d(16, 2, 1)

        def forward(self, x):
            left, right = self.a(x).split([4, 12], dim=1)
            return self.b(torch.cat([right, left], 1))

    with pytest.raises(UsageError, match="can be pruned consistently.*left whole: a"):
        prune(OnlyFixed().eval(), _image(), _call, 0.5, "magnitude")


def test_yolov8n_as_ultralytics_builds_it_prunes_whole_and_keeps_its_head_widths():
    from tests.yolov8n import YoloV8n

    torch.manual_seed(0)
    model = YoloV8n().eval()
    example = {"images": torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(0))}
    pruned, counts = prune(model, example, _call, 0.5, "magnitude")
    assert counts["parameters_before"] == 3_157_200  # YOLOv8n's published size: the reimplementation is faithful
    assert counts["left_whole"] == [] and counts["parameters_after"] < 0.35 * counts["parameters_before"]
    assert pruned(example["images"]).shape == model(example["images"]).shape == (2, 84, 525)
    assert all(pruned.detect.cv3[i][2].out_channels == 80 for i in range(3))  # class and box layers keep widths
    assert pruned.b2.cv1.conv.out_channels == 2 * pruned.b2.m[0].cv1.conv.in_channels  # C2f's halves stay equal
