"""2:4 sparsity: the masks keep two of every four weights along the input channels, fine-tuning keeps the pattern
while it changes the weights, and the linter catches a broken pattern in a (quantized) ONNX model."""

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from compress_export.exporters.tensorrt.lint import groups_breaking_2_4, lint_for_tensorrt

torch = pytest.importorskip("torch")


def test_masks_keep_the_two_largest_of_every_four_input_weights():
    from compress_export.compression.sparsity_torch import masks_2_4

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(8, 6, 3), torch.nn.Conv2d(6, 4, 1), torch.nn.Conv2d(8, 8, 3, groups=8),
                              torch.nn.Flatten(), torch.nn.Linear(12, 5))
    masks = masks_2_4(net)
    assert set(masks) == {"0", "4"}  # 6 input channels and a depthwise conv do not fit the pattern
    conv = masks["0"].movedim(1, -1).reshape(-1, 4)
    assert bool((conv.sum(dim=1) == 2).all())
    weight = net[0].weight.detach().movedim(1, -1).reshape(-1, 4).abs()
    kept = weight * conv
    assert bool((kept.max(dim=1).values == weight.max(dim=1).values).all())  # the largest always stays
    assert groups_breaking_2_4((net[4].weight.detach() * masks["4"]).numpy(), 1) == 0
    assert groups_breaking_2_4(net[4].weight.detach().numpy(), 1) > 0


def test_fine_tuning_changes_the_weights_and_keeps_the_pattern(tmp_path):
    from compress_export.compression.distill_torch import DistillSettings, distill
    from compress_export.compression.sparsity_torch import apply_masks, masks_2_4
    from compress_export.data.calibration_data import CalibrationData, Shard
    from compress_export.specs import TensorSpec

    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    student = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    student.load_state_dict(teacher.state_dict())
    masks = masks_2_4(student)
    apply_masks(student, masks)
    before = student[2].weight.detach().clone()
    np.savez(tmp_path / "train.npz", x=np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32))
    spec = (TensorSpec("x", ("batch", 8), "float32"),)
    data = CalibrationData((Shard(tmp_path / "train.npz", tuple(range(64))),), spec, batch_size=16)
    tuned, result = distill(student, teacher, lambda m, feeds: {"y": m(torch.as_tensor(feeds["x"]))}, data,
                            DistillSettings(steps=20, lr=1e-2, device="cpu"), constrain=lambda m: apply_masks(m, masks))
    assert not torch.equal(tuned[2].weight, before)
    for name in masks:
        assert groups_breaking_2_4(tuned.get_submodule(name).weight.numpy(), 1) == 0
    assert result.losses[-1] < result.losses[0]


def _gemm_model(weight: np.ndarray, quantized: bool) -> onnx.ModelProto:
    nodes, inits = [], []
    if quantized:
        inits += [numpy_helper.from_array(np.round(weight * 10).astype(np.int8), "w_q"),
                  numpy_helper.from_array(np.array(0.1, np.float32), "w_s")]
        nodes.append(helper.make_node("DequantizeLinear", ["w_q", "w_s"], ["w"], name="dq"))
    else:
        inits.append(numpy_helper.from_array(weight, "w"))
    nodes.append(helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("quantized", [False, True])
def test_the_linter_catches_a_broken_2_4_pattern(quantized):
    from compress_export.exporters.tensorrt.lint import SPARSITY_KEY
    from compress_export.graphs.onnx_io import set_metadata

    weight = np.array([[1, 0, 2, 0, 0, 3, 0, 4], [0, 5, 6, 0, 7, 0, 0, 8], [1, 1, 0, 0, 0, 0, 1, 1]], np.float32)
    model = _gemm_model(weight, quantized)
    assert lint_for_tensorrt(model, sparsity="2:4") == []
    broken = weight.copy()
    broken[1, 4:] = [7, 1, 0, 8]  # three non-zeros in one group
    model = _gemm_model(broken, quantized)
    assert lint_for_tensorrt(model) == []  # not asked, not recorded
    set_metadata(model, {SPARSITY_KEY: "2:4"})
    found = lint_for_tensorrt(model)
    assert [(v.rule, v.node) for v in found] == [("sparsity", "fc")] and "1 of 6" in found[0].message
