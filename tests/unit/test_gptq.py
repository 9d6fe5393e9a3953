"""GPTQ's 4-bit rounding: it moves a layer's output on correlated inputs less than rounding to nearest, its codes and
scales land in MatMulNBits exactly (onnxruntime computes with the weights we dequantize), and the calibration text
is the same in every process and never the held-out text."""

import numpy as np
import pytest

from compress_export.exporters.genai.gptq import LEVELS, Int4Weight, gptq
from compress_export.exporters.genai.gptq_calibration import fake_quantize, relative_output_error


def _correlated_inputs(rng, tokens: int, k: int) -> np.ndarray:
    mixing = rng.normal(size=(k, k)) / np.sqrt(k) + np.eye(k)
    scale = np.exp(rng.normal(size=k))  # channels of very different energy, as in a transformer
    return (rng.normal(size=(tokens, k)) @ mixing * scale).astype(np.float32)


@pytest.mark.parametrize("act_order", [True, False])
def test_gptq_moves_the_output_less_than_rounding_to_nearest(act_order):
    rng = np.random.default_rng(0)
    x = _correlated_inputs(rng, 512, 96)
    weight = rng.normal(size=(96, 40)).astype(np.float32)
    hessian = x.T.astype(np.float64) @ x
    rounded = gptq(weight, hessian, 32, act_order)
    assert rounded.codes.dtype == np.uint8 and rounded.codes.max() < LEVELS
    assert rounded.scales.shape == (40, 3)
    ours = relative_output_error(weight, rounded.dequantized(), hessian)
    nearest = relative_output_error(weight, fake_quantize(weight, 4, 0), hessian)
    same_grid = Int4Weight(np.clip(np.round(weight.T / np.repeat(rounded.scales, 32, axis=1)) + 8, 0, 15)
                           .astype(np.uint8), rounded.scales, 96)
    assert ours < 0.7 * nearest
    assert ours < 0.7 * relative_output_error(weight, same_grid.dequantized(), hessian)  # the error feedback's share
    assert np.abs(x @ rounded.dequantized() - x @ weight).mean() < np.abs(x @ fake_quantize(weight, 4, 0)
                                                                           - x @ weight).mean()


def test_gptq_pads_a_depth_that_is_not_a_block_multiple_and_ignores_dead_inputs():
    rng = np.random.default_rng(1)
    x = _correlated_inputs(rng, 256, 40)
    x[:, 3] = 0.0  # an input that never fires
    weight = rng.normal(size=(40, 8)).astype(np.float32)
    rounded = gptq(weight, x.T.astype(np.float64) @ x, 32)
    assert rounded.codes.shape == (8, 64) and rounded.dequantized().shape == (40, 8)
    assert np.isfinite(rounded.dequantized()).all()


def test_codes_and_scales_land_in_matmulnbits_exactly(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    from compress_export.exporters.genai.build import replace_4bit_weights

    rng = np.random.default_rng(2)
    k, n = 64, 24
    weight = rng.normal(size=(k, n)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, n])],
                              [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=None, bits=4)
    quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=32, is_symmetric=True, algo_config=config)
    quantizer.process()
    model = quantizer.model.model
    x = rng.normal(size=(3, k)).astype(np.float32)
    mine = gptq(weight, (x.T @ x).astype(np.float64) + np.eye(k), 32)
    replace_4bit_weights(model, {"mm": mine})
    onnx.checker.check_model(model)
    y = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(y, x @ mine.dequantized(), rtol=1e-4, atol=1e-4)


def test_packing_puts_the_even_index_in_the_low_nibble():
    codes = np.array([[1, 2, 15, 0]], dtype=np.uint8)
    packed = Int4Weight(codes, np.ones((1, 1), np.float32), 4).packed()
    assert packed.tolist() == [[[0x21, 0x0F]]]


def test_calibration_text_is_stable_and_not_the_held_out_text():
    from compress_export.data.text import CALIBRATION_MODULES, DOC_MODULES, calibration_text, held_out_text

    assert not set(CALIBRATION_MODULES) & set(DOC_MODULES)
    calibration, origin = calibration_text(None)
    held_out, _ = held_out_text(None)
    assert " at 0x" not in calibration and " at 0x" not in held_out  # object addresses differ per process
    assert calibration != held_out and "--calib-data" in origin


def test_loss_sensitivity_finds_fused_projections_and_scores_only_what_changes(tmp_path):
    pytest.importorskip("transformers")
    from compress_export.exporters.genai.build import WeightMatrix
    from compress_export.exporters.genai.weight_sensitivity import Edges, loss_sensitivity
    from compress_export.sources.causal_lm import float_model
    from tests.tiny_llm import write_tiny_llama

    folder = write_tiny_llama(tmp_path / "llama")
    model = float_model(folder)
    attention = model.model.layers[0].self_attn
    qkv = np.concatenate([p.weight.detach().numpy().T for p in (attention.q_proj, attention.k_proj,
                                                                attention.v_proj)], axis=1)  # as a builder fuses it
    up = model.model.layers[1].mlp.up_proj.weight.detach().numpy().T
    matrices = [WeightMatrix("qkv", "MatMul", "w_qkv", qkv.shape), WeightMatrix("up", "MatMul", "w_up", up.shape),
                WeightMatrix("same", "MatMul", "w_same", up.shape)]
    edges = {"qkv": Edges.of(qkv), "up": Edges.of(up), "same": Edges.of(up)}
    rng = np.random.default_rng(0)
    rounded = {"qkv": qkv + 0.05 * rng.normal(size=qkv.shape).astype(np.float32),
               "up": up + 0.05 * rng.normal(size=up.shape).astype(np.float32), "same": up.copy()}
    spans = [rng.integers(0, 300, size=48) for _ in range(2)]
    found = loss_sensitivity(folder, matrices, edges, rounded, spans)
    q, k = attention.q_proj.out_features, attention.k_proj.out_features
    pieces = [u for u in found.units if u.parent == "qkv"]
    assert [u.columns for u in pieces] == [(0, q), (q, q + k), (q + k, qkv.shape[1])]  # scored per module
    assert [u.module for u in pieces] == [f"model.layers.0.self_attn.{p}_proj" for p in "qkv"]
    assert {u.node for u in found.units} == set(found.scores) == {u.node for u in pieces} | {"up", "same"}
    assert all(found.scores[u.node] > 0 for u in pieces) and found.scores["up"] > 0
    assert found.scores["same"] < 1e-6 * found.scores["up"]  # an unchanged weight costs the loss nothing
    stranger = {**edges, "up": Edges.of(up + 1.0)}  # a weight no module holds: no ranking by loss at all
    assert loss_sensitivity(folder, matrices, stranger, rounded, spans) is None


def test_the_lm_head_is_scored_in_runs_of_vocabulary_columns(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from compress_export.exporters.genai import weight_sensitivity as sensitivity
    from compress_export.exporters.genai.build import WeightMatrix
    from compress_export.sources.causal_lm import float_model
    from tests.tiny_llm import write_tiny_llama

    folder = write_tiny_llama(tmp_path / "llama")
    head = float_model(folder).get_output_embeddings().weight.detach().numpy().T  # [hidden, vocab], as ONNX reads it
    monkeypatch.setattr(sensitivity, "VOCAB_RUNS", (64, 128, 10_000))
    changed = head.copy()
    changed[:, 64:128] += 0.05 * np.random.default_rng(0).normal(size=(head.shape[0], 64)).astype(np.float32)
    spans = [np.random.default_rng(1).integers(0, 300, size=48) for _ in range(2)]
    found = sensitivity.loss_sensitivity(folder, [WeightMatrix("head", "MatMul", "w_head", head.shape)],
                                         {"head": sensitivity.Edges.of(head)}, {"head": changed}, spans)
    assert [u.columns for u in found.units] == [(0, 64), (64, 128), (128, head.shape[1])]
    scores = [found.scores[u.node] for u in found.units]
    assert scores[1] > 0 and scores[0] < 1e-6 * scores[1] and scores[2] < 1e-6 * scores[1]  # each run its own


def test_a_hessian_without_cholesky_factor_is_refused_not_rounded_wrongly():
    from compress_export.exporters.genai.gptq import NotPositiveDefinite

    with pytest.raises(NotPositiveDefinite):
        gptq(np.ones((32, 4), np.float32), -np.eye(32), 32)


def _fused_matmul(weight):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="qkv")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, weight.shape[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, weight.shape[1]])],
                              [numpy_helper.from_array(weight, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_pieces_of_a_fused_matmul_split_where_their_widths_differ_and_compute_the_same():
    import onnxruntime as ort

    from compress_export.exporters.genai.build import WeightMatrix, piece, split_mixed_widths

    rng = np.random.default_rng(0)
    weight = rng.normal(size=(64, 12)).astype(np.float32)
    whole = WeightMatrix("qkv", "MatMul", "w", weight.shape)
    pieces = [piece(whole, 0, 6), piece(whole, 6, 9), piece(whole, 9, 12)]
    codes = gptq(weight, np.eye(64), 32)
    x = rng.normal(size=(2, 64)).astype(np.float32)

    model = _fused_matmul(weight)
    widths = {p.node: w for p, w in zip(pieces, (4, 4, 8), strict=True)}
    bits, int4 = split_mixed_widths(model, widths, {"qkv": codes}, pieces)
    assert bits == {"qkv/columns0_9": 4, "qkv/columns9_12": 8}  # equal neighbours share one MatMul
    assert np.array_equal(int4["qkv/columns0_9"].dequantized(), codes.dequantized()[:, :9])
    assert [n.op_type for n in model.graph.node] == ["MatMul", "MatMul", "Concat"]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert np.allclose(session.run(None, {"x": x})[0], x @ weight, atol=1e-5)

    model = _fused_matmul(weight)
    bits, _ = split_mixed_widths(model, {p.node: 8 for p in pieces}, {}, pieces)
    assert bits == {"qkv": 8} and [n.op_type for n in model.graph.node] == ["MatMul"]  # one width: stays fused
