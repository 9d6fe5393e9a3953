"""Each graph rewrite keeps the model's outputs (within FP32 rounding) and changes only what it may; a rewrite that
would change them is refused by its matcher or undone by the check around it."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compress_export.graphs import affine_folding
from compress_export.graphs.activation_fusion import fuse_hard_activations
from compress_export.graphs.affine_folding import fold_affine
from compress_export.graphs.onnx_io import session
from compress_export.graphs.selection import default_opset
from compress_export.sources import graph_rewrites
from compress_export.sources.graph_rewrites import rewrite_graph

RNG = np.random.default_rng(3)
SHAPE = [2, 4, 9, 9]


def _model(nodes, initializers, opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(value, np.float32), name) for name, value in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return session(model).run(None, {"x": x})[0]


def _ops(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node]


def _feeds() -> dict[str, np.ndarray]:
    return {"x": RNG.normal(0, 3, SHAPE).astype(np.float32)}


def _conv_then_affine(pads=(1, 1, 1, 1)) -> onnx.ModelProto:
    return _model([
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=list(pads)),
        helper.make_node("Mul", ["c", "scale"], ["m"]),
        helper.make_node("Add", ["shift", "m"], ["y"]),
    ], {"w": RNG.normal(size=(6, 4, 3, 3)), "b": RNG.normal(size=6),
        "scale": RNG.uniform(-2, 2, (1, 6, 1, 1)), "shift": RNG.normal(size=(6, 1, 1))})


def _affine_then_conv(pads) -> onnx.ModelProto:
    return _model([
        helper.make_node("Mul", ["x", "scale"], ["m"]),
        helper.make_node("Add", ["m", "shift"], ["a"]),
        helper.make_node("Conv", ["a", "w", "b"], ["y"], pads=list(pads)),
    ], {"w": RNG.normal(size=(6, 4, 3, 3)), "b": RNG.normal(size=6),
        "scale": RNG.uniform(0.5, 2, (1, 4, 1, 1)), "shift": RNG.normal(size=(4, 1, 1))})


def test_per_channel_scale_and_shift_after_a_conv_fold_into_its_weights_and_bias():
    model = _conv_then_affine()
    x = _feeds()["x"]
    expected = _run(model, x)
    assert fold_affine(model) == 2
    assert _ops(model) == ["Conv"] and model.graph.node[0].output[0] == "y"
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-5, atol=1e-4)
    assert {init.name for init in model.graph.initializer}.isdisjoint({"w", "b", "scale", "shift"})


def test_affine_before_an_unpadded_conv_folds_and_a_padded_one_is_left_alone():
    unpadded, padded = _affine_then_conv((0, 0, 0, 0)), _affine_then_conv((1, 1, 1, 1))
    x = _feeds()["x"]
    expected = _run(unpadded, x)
    assert fold_affine(unpadded) == 2 and _ops(unpadded) == ["Conv"]
    np.testing.assert_allclose(_run(unpadded, x), expected, rtol=1e-5, atol=1e-4)
    assert fold_affine(padded) == 0 and _ops(padded) == ["Mul", "Add", "Conv"]


def test_a_constant_that_varies_along_width_is_not_a_per_channel_scale():
    model = _model([
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Mul", ["c", "scale"], ["y"]),
    ], {"w": RNG.normal(size=(6, 4, 1, 1)), "scale": RNG.normal(size=9)})
    assert fold_affine(model) == 0 and _ops(model) == ["Conv", "Mul"]


def test_a_conv_output_read_elsewhere_keeps_its_scale_outside():
    model = _model([
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Mul", ["c", "scale"], ["m"]),
        helper.make_node("Add", ["c", "m"], ["y"]),
    ], {"w": RNG.normal(size=(4, 4, 1, 1)), "scale": RNG.normal(size=(1, 4, 1, 1))})
    assert fold_affine(model) == 0


def _hard_swish(opset: int, divide: bool) -> onnx.ModelProto:
    if opset >= 11:
        clip = helper.make_node("Clip", ["p", "zero", "six"], ["c"])
        constants = {"zero": np.float32(0), "six": np.float32(6)}
    else:
        clip = helper.make_node("Clip", ["p"], ["c"], min=0.0, max=6.0)
        constants = {}
    scale = (helper.make_node("Div", ["g", "six_d"], ["y"]) if divide
             else helper.make_node("Mul", ["sixth", "g"], ["y"]))
    return _model([helper.make_node("Add", ["x", "three"], ["p"]), clip, helper.make_node("Mul", ["x", "c"], ["g"]),
                   scale], {"three": np.float32(3), "six_d": np.float32(6), "sixth": np.float32(1 / 6), **constants},
                  opset=opset)


@pytest.mark.parametrize("opset,divide", [(17, True), (17, False), (9, True)])
def test_decomposed_hard_swish_becomes_one_hard_swish(opset, divide):
    model = _hard_swish(opset, divide)
    x = _feeds()["x"]
    expected = _run(model, x)
    assert fuse_hard_activations(model) == 1
    assert _ops(model) == ["HardSwish"] and default_opset(model) >= 14
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-6, atol=1e-6)


def test_decomposed_hard_sigmoid_becomes_one_op_and_other_clips_stay():
    model = _model([helper.make_node("Add", ["x", "three"], ["p"]),
                    helper.make_node("Clip", ["p", "zero", "six"], ["c"]),
                    helper.make_node("Div", ["c", "six"], ["y"])],
                   {"three": np.float32(3), "zero": np.float32(0), "six": np.float32(6)})
    x = _feeds()["x"]
    expected = _run(model, x)
    assert fuse_hard_activations(model) == 1 and _ops(model) == ["HardSigmoid"]
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-6, atol=1e-6)
    relu5 = _model([helper.make_node("Add", ["x", "three"], ["p"]),
                    helper.make_node("Clip", ["p", "zero", "five"], ["c"]),
                    helper.make_node("Div", ["c", "six"], ["y"])],
                   {"three": np.float32(3), "zero": np.float32(0), "five": np.float32(5), "six": np.float32(6)})
    assert fuse_hard_activations(relu5) == 0


def test_rewrites_that_keep_outputs_are_kept_and_noted():
    model = _conv_then_affine()
    rewritten, notes = rewrite_graph(model, _feeds())
    assert _ops(rewritten) == ["Conv"]
    assert len(notes) == 1 and "2 place(s)" in notes[0]


def test_a_rewrite_that_changes_outputs_is_undone(monkeypatch):
    """Folding an affine step into a padded Conv from its input side is wrong at the border: forced past the
    matcher, the output check must undo it."""
    monkeypatch.setattr(affine_folding, "_unpadded", lambda conv: True)
    model = _affine_then_conv((1, 1, 1, 1))
    rewritten, notes = rewrite_graph(model, _feeds())
    assert _ops(rewritten) == ["Mul", "Add", "Conv"]
    assert len(notes) == 1 and "undone" in notes[0]


def test_a_rewrite_that_raises_leaves_the_graph_as_it_was(monkeypatch):
    def broken(model):
        model.graph.node.pop()
        raise ValueError("unexpected graph")

    monkeypatch.setattr(graph_rewrites, "REWRITES", (("broken", broken),))
    model = _conv_then_affine()
    rewritten, notes = rewrite_graph(model, _feeds())
    assert _ops(rewritten) == ["Conv", "Mul", "Add"] and "skipped" in notes[0]
