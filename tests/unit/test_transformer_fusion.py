"""The fusion check tells a changed function from float reassociation, and, in a quantized graph, from INT8
rounding that tipped the other way."""

import numpy as np
import pytest

from compress_export.exporters.onnx.transformer_fusion import same_function

RNG = np.random.default_rng(0)
BEFORE = [RNG.normal(size=(8, 384))]


def test_reassociation_is_the_same_function_in_any_graph():
    after = [BEFORE[0] + 1e-7]
    assert same_function(BEFORE, after, quantized=False) == 0.0


def test_a_few_tipped_int8_steps_pass_only_in_a_quantized_graph():
    after = [BEFORE[0].copy()]
    after[0][3, :40] += 0.3  # one sample's features moved by a quantum or so
    moved = same_function(BEFORE, after, quantized=True)
    assert moved is not None and 0.0 < moved < 0.05
    assert same_function(BEFORE, after, quantized=False) is None


def test_a_wrong_fusion_fails_even_in_a_quantized_graph():
    assert same_function(BEFORE, [BEFORE[0] * 0.5], quantized=True) is None
    assert same_function(BEFORE, [BEFORE[0][:, :100]], quantized=True) is None


def _graph_of(*ops):
    from onnx import TensorProto, helper

    nodes = [helper.make_node(op, [f"t{i}"], [f"t{i + 1}"]) for i, op in enumerate(ops)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info(f"t{len(ops)}", TensorProto.FLOAT, [1])])
    return helper.make_model(graph)


def test_the_optimizer_runs_only_where_a_layernorm_or_gelu_is(tmp_path, monkeypatch):
    import onnx
    from onnxruntime.transformers import optimizer

    from compress_export.exporters.onnx.transformer_fusion import fuse_transformer_subgraphs, has_fusable_ops

    assert has_fusable_ops(_graph_of("ReduceMean", "Sub", "Pow", "ReduceMean", "Sqrt", "Div"))
    assert has_fusable_ops(_graph_of("MatMul", "Erf")) and has_fusable_ops(_graph_of("LayerNormalization"))
    cnn = _graph_of("Conv", "Relu", "Resize", "Conv", "Sigmoid")
    assert not has_fusable_ops(cnn)
    onnx.save(cnn, tmp_path / "cnn.onnx")
    monkeypatch.setattr(optimizer, "optimize_model", lambda *args, **kwargs: pytest.fail("optimizer ran on a CNN"))
    assert fuse_transformer_subgraphs(tmp_path / "cnn.onnx", {}) == []
