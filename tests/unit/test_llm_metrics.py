"""The language-model metrics against hand-computed values on tiny inputs, the sliding windows, the block-wise
rounding and the budget search's choices."""

import math

import numpy as np
import pytest

from compress_export.data.text import windows
from compress_export.exporters.genai.gptq_calibration import fake_quantize
from compress_export.metrics.suite import MetricSuite
from compress_export.search.weight_widths import search


def _metrics(reference: dict, candidate: dict) -> dict:
    from compress_export.metrics import get_metrics

    suite = MetricSuite([], get_metrics(("perplexity", "token_agreement", "bleu", "chrf", "exact_match")))
    suite.update(reference, candidate, None)
    return suite.metrics()


def test_perplexity_and_next_token_agreement_by_hand():
    metrics = _metrics({"nll": np.log([2.0, 4.0]), "top1": np.array([5, 6])},
                       {"nll": np.log([4.0, 4.0]), "top1": np.array([5, 7])})
    assert metrics["reference"]["perplexity"] == pytest.approx(math.sqrt(8))  # exp(mean(ln 2, ln 4))
    assert metrics["candidate"]["perplexity"] == pytest.approx(4.0)
    assert metrics["candidate"]["next_token_agreement"] == 0.5
    from compress_export.metrics.perplexity import METRIC

    assert METRIC.gate_values({}, metrics) == [("max_perplexity_increase",
                                                pytest.approx(100 * (4 - math.sqrt(8)) / math.sqrt(8)))]


def test_bleu_chrf_and_exact_match_by_hand():
    reference = {"continuations": ["the cat sat on the mat"], "continuation_ids": [[1, 2, 3, 4, 5, 6, 7, 8, 9]]}
    same = _metrics(reference, dict(reference))["candidate"]
    assert same["bleu"] == pytest.approx(100.0) and same["chrf"] == pytest.approx(100.0)
    assert same["exact_match_first_tokens"] == 1.0
    # Every n-gram of the first four words matches (precisions 1): BLEU is the brevity penalty exp(1 - 6/4).
    prefix = _metrics(reference, {"continuations": ["the cat sat on"],
                                  "continuation_ids": [[1, 2, 3, 4, 5, 6, 7, 0]]})["candidate"]
    assert prefix["bleu"] == pytest.approx(100 * math.exp(-0.5), abs=1e-3)
    assert 0 < prefix["chrf"] < 100
    assert prefix["exact_match_first_tokens"] == 0.0  # the eighth token differs


def test_windows_score_every_token_after_the_first_exactly_once():
    ids = np.arange(12)
    spans = windows(ids, window=5, stride=2)
    scored = [int(span.ids[position + 1]) for span in spans for position in range(span.first, len(span.ids) - 1)]
    assert scored == list(range(1, 12))
    assert all(len(span.ids) <= 5 for span in spans)
    assert [s.first for s in windows(np.arange(3), 8, 4)] == [0]


def test_block_rounding_error_falls_with_bits_and_keeps_zero_blocks():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(64, 8)).astype(np.float32)
    errors = [np.abs(fake_quantize(weight, bits, 0) - weight).mean() for bits in (2, 4, 8)]
    assert errors[0] > errors[1] > errors[2] > 0
    weight[:32] = 0
    assert not fake_quantize(weight, 4, 0)[:32].any()
    outlier = weight.copy()
    outlier[40, 3] = 100.0  # one outlier ruins its block's scale
    assert np.abs(fake_quantize(outlier, 4, 0) - outlier)[32:].mean() > errors[1]


def _held(increase: float, budget: float, bleu: float | None = None, floor: float = 0.0):
    """What the pipeline's evaluate returns: (increase, size, BLEU, whether both hold)."""
    return increase, 1, bleu, increase <= budget and (bleu is None or bleu >= floor)


class _Matrix:
    def __init__(self, node, parameters=100):
        self.node, self.op, self.parameters = node, "MatMul", parameters


def test_search_promotes_the_fewest_ranked_matrices_that_hold_the_budget():
    matrices = [_Matrix(f"m{i}") for i in range(64)]
    ranking = [(m.node, 1.0 / (i + 1)) for i, m in enumerate(matrices)]
    seen = []

    def evaluate(bits):  # each of the 10 most sensitive matrices costs 1%, the rest nothing
        promoted = {node for node, width in bits.items() if width == 8}
        seen.append(len(promoted))
        return _held(float(sum(1 for i in range(10) if f"m{i}" not in promoted)), 3.0)

    result = search(matrices, 4, ranking, evaluate)
    assert result.met and len(result.promoted) == 7  # the least that holds
    assert result.promoted == [f"m{i}" for i in range(len(result.promoted))]
    assert all(result.bits[f"m{i}"] == 4 for i in range(len(result.promoted), 64))
    assert seen[0] == 0 and len(seen) <= 9 + 4  # doubling, bisection, then the demotion tries
    hopeless = search(matrices, 4, ranking, lambda bits: _held(50.0, 3.0))
    assert not hopeless.met and len(hopeless.promoted) == 64


def test_search_puts_a_large_matrix_back_at_4_bits_when_the_budget_allows():
    names = ["head", "qa", "qb", "qc", "qd", "qe", "qf", "qg"]
    matrices = [_Matrix("head", 10_000)] + [_Matrix(name) for name in names[1:]]
    ranking = [(m.node, 1.0 / (i + 1)) for i, m in enumerate(matrices)]  # the head ranks first but costs little

    def evaluate(bits):
        promoted = {node for node, width in bits.items() if width == 8}
        return _held(2.0 * sum(1 for name in ("qa", "qb", "qc") if name not in promoted) +
                     (0.5 if "head" not in promoted else 0), 1.0)

    result = search(matrices, 4, ranking, evaluate)
    assert result.met and result.promoted == ["qa", "qb", "qc"]
    assert any(trial.demoted == "head" for trial in result.trials)


def test_the_search_also_holds_the_bleu_floor():
    matrices = [_Matrix(f"m{i}") for i in range(8)]
    ranking = [(m.node, 1.0) for m in matrices]

    def evaluate(bits):  # perplexity holds from the start; BLEU needs the first five matrices at 8 bits
        promoted = sum(1 for width in bits.values() if width == 8)
        return _held(1.0, 5.0, bleu=10.0 * promoted, floor=45.0)

    result = search(matrices, 4, ranking, evaluate)
    assert result.met and len(result.promoted) == 5
    assert result.trials[0].bleu == 0.0 and not result.trials[0].met
