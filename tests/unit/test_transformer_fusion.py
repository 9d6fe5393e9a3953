"""The fusion check tells a changed function from float reassociation, and, in a quantized graph, from INT8
rounding that tipped the other way."""

import numpy as np

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
