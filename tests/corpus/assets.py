"""The tiny models and data files the corpus cases start from, built in seconds with onnx and numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG_SEED = 0


def _model(nodes, inputs, outputs, inits=(), opset=17, domains=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "corpus", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                   *(helper.make_opsetid(d, 1) for d in domains)])


def _value(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def mlp() -> onnx.ModelProto:
    """x (batch, 4) -> MatMul -> Relu -> MatMul -> logits (batch, 3): a classifier."""
    rng = np.random.default_rng(RNG_SEED)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 8)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=(8, 3)).astype(np.float32), "w2")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["logits"], name="mm2")]
    return _model(nodes, [_value("x", TensorProto.FLOAT, ["batch", 4])],
                  [_value("logits", TensorProto.FLOAT, ["batch", 3])], inits)


def tokens() -> onnx.ModelProto:
    """ids (batch, 6) int64 -> Gather from a 10-row table -> mean: out-of-range ids fail at run time."""
    table = numpy_helper.from_array(np.random.default_rng(RNG_SEED).normal(size=(10, 4)).astype(np.float32), "table")
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="gather"),
             helper.make_node("ReduceMean", ["e"], ["y"], name="mean", axes=[1], keepdims=0)]
    return _model(nodes, [_value("ids", TensorProto.INT64, ["batch", 6])],
                  [_value("y", TensorProto.FLOAT, ["batch", 4])], [table], opset=17)


def two_inputs() -> onnx.ModelProto:
    nodes = [helper.make_node("Add", ["a", "b"], ["y"], name="add")]
    return _model(nodes, [_value("a", TensorProto.FLOAT, ["batch", 4]), _value("b", TensorProto.FLOAT, ["batch", 4])],
                  [_value("y", TensorProto.FLOAT, ["batch", 4])])


def fixed_reshape() -> onnx.ModelProto:
    """Reshapes to (2, 4): any batch but 2 fails inside onnxruntime."""
    shape = numpy_helper.from_array(np.array([2, 4], np.int64), "shape")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")]
    return _model(nodes, [_value("x", TensorProto.FLOAT, ["batch", 4])], [_value("y", TensorProto.FLOAT, [2, 4])],
                  [shape])


def symbolic() -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    return _model(nodes, [_value("x", TensorProto.FLOAT, ["batch", "n"])],
                  [_value("y", TensorProto.FLOAT, ["batch", "n"])])


def huge() -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    return _model(nodes, [_value("x", TensorProto.FLOAT, ["batch", 100_000, 100_000])],
                  [_value("y", TensorProto.FLOAT, ["batch", 100_000, 100_000])])


def no_inputs() -> onnx.ModelProto:
    value = numpy_helper.from_array(np.ones((1, 4), np.float32), "value")
    nodes = [helper.make_node("Constant", [], ["y"], name="constant", value=value)]
    return _model(nodes, [], [_value("y", TensorProto.FLOAT, [1, 4])])


def custom_op() -> onnx.ModelProto:
    nodes = [helper.make_node("Mystery", ["x"], ["y"], name="mystery", domain="corpus.custom")]
    return _model(nodes, [_value("x", TensorProto.FLOAT, ["batch", 4])], [_value("y", TensorProto.FLOAT, ["batch", 4])],
                  domains=("corpus.custom",))


def future_opset() -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    model = _model(nodes, [_value("x", TensorProto.FLOAT, ["batch", 4])],
                   [_value("y", TensorProto.FLOAT, ["batch", 4])], opset=30)
    model.ir_version = 10
    return model


def undefined_input() -> onnx.ModelProto:
    nodes = [helper.make_node("Add", ["x", "nowhere"], ["y"], name="add")]
    return _model(nodes, [_value("x", TensorProto.FLOAT, ["batch", 4])], [_value("y", TensorProto.FLOAT, ["batch", 4])])


def rows_folded() -> onnx.ModelProto:
    """The mlp whose class scores come back two samples to a row ((batch / 2, 6)): not one row per labelled sample."""
    model = mlp()
    graph = model.graph
    graph.node[-1].output[0] = "scores"
    graph.initializer.append(numpy_helper.from_array(np.array([-1, 6], np.int64), "folded"))
    graph.node.append(helper.make_node("Reshape", ["scores", "folded"], ["logits"], name="fold"))
    del graph.output[:]
    graph.output.append(_value("logits", TensorProto.FLOAT, ["half", 6]))
    return model


MODELS = {"mlp": mlp, "rows_folded": rows_folded, "tokens": tokens, "two_inputs": two_inputs,
          "fixed_reshape": fixed_reshape, "symbolic": symbolic, "huge": huge, "no_inputs": no_inputs,
          "custom_op": custom_op, "future_opset": future_opset, "undefined_input": undefined_input}


def mlp_data(samples: int = 24, seed: int = RNG_SEED) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, 4)).astype(np.float32)
    logits = np.maximum(x @ mlp_weights()[0], 0) @ mlp_weights()[1]
    return {"x": x, "label": logits.argmax(1).astype(np.int64)}


def mlp_weights() -> tuple[np.ndarray, np.ndarray]:
    model = mlp()
    arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    return arrays["w1"], arrays["w2"]


def write_assets(folder: Path) -> dict[str, Path]:
    """Every model as .onnx and the good data files; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, build in MODELS.items():
        path = folder / f"{name}.onnx"
        onnx.save_model(build(), str(path))
        paths[name] = path
    np.savez(folder / "mlp_calib.npz", **mlp_data())
    np.savez(folder / "mlp_val.npz", **mlp_data(16, seed=1))
    paths["mlp_calib"], paths["mlp_val"] = folder / "mlp_calib.npz", folder / "mlp_val.npz"
    return paths
