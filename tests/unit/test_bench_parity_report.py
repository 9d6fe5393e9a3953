import json
import math

import numpy as np
import pytest

from compress_export.metrics import all_metrics, get_metrics
from compress_export.metrics.cosine import cosine_rows
from compress_export.metrics.gates import Gates
from compress_export.metrics.sqnr import sqnr_db
from compress_export.metrics.suite import MetricSuite
from compress_export.report.report import Report
from compress_export.validators.bench import percentile_ms, summarize, tile_batch


def test_trtexec_percentile_rule():
    samples = [float(i) for i in range(1, 101)]  # 1..100
    assert percentile_ms(samples, 50) == 50.0
    assert percentile_ms(samples, 99) == 99.0
    assert percentile_ms(samples, 90) == 90.0
    assert percentile_ms([5.0, 7.0, 9.0], 99) == 9.0  # floor(0.03) = 0 dropped
    assert percentile_ms(sorted([3.0] * 9 + [100.0]), 90) == 3.0  # drops exactly one


def test_summary_has_throughput_from_mean():
    result = summarize([2.0, 2.0, 4.0], batch=8)
    assert result["mean_ms"] == pytest.approx(8 / 3)
    assert result["throughput_per_s"] == pytest.approx(8 * 1000 / (8 / 3))
    assert result["runs"] == 3


def test_tile_batch_repeats_real_rows():
    sample = {"x": np.arange(3)[:, None]}
    assert tile_batch(sample, 7)["x"].ravel().tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_cosine_and_sqnr_known_values():
    a = np.array([[1.0, 0.0], [0.0, 0.0]])
    b = np.array([[0.0, 1.0], [0.0, 0.0]])
    assert cosine_rows(a, b).tolist() == [0.0, 1.0]
    assert sqnr_db(100.0, 1.0) == pytest.approx(20.0)
    assert math.isinf(sqnr_db(1.0, 0.0))
    for signal, noise in ((1.0, math.inf), (math.inf, math.inf), (0.0, 1.0)):  # an FP16 tensor past its range
        assert sqnr_db(signal, noise) == -math.inf


def test_output_parity_statistics():
    suite = MetricSuite(["y"], all_metrics())
    reference = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    suite.update({"y": reference}, {"y": reference + np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])}, None)
    result = suite.parity()["y"]
    assert result["max_abs"] == 0.5
    assert result["mean_abs"] == pytest.approx(0.5 / 6)
    assert result["top1_agreement"] == 1.0
    assert result["sqnr_db"] == pytest.approx(10 * np.log10(28 / 0.25))
    assert result["cosine"] < 1.0 and result["samples"] == 2


def test_every_registered_metric_has_a_unique_name_and_each_gate_a_direction():
    names = [metric.name for metric in all_metrics()]
    assert len(names) == len(set(names))
    gates = {metric.gate.name: metric.gate for metric in all_metrics() if metric.gate}
    assert gates["min_cosine"].higher_is_better and not gates["max_accuracy_drop"].higher_is_better
    assert gates["min_cosine"].passes(0.995, 0.99) and not gates["min_cosine"].passes(0.985, 0.99)
    assert gates["max_accuracy_drop"].passes(None, 1.0)  # no labels: nothing to hold against


def test_accuracy_from_labels_and_disagreement():
    acc = MetricSuite(["logits"], get_metrics(["accuracy", "top1", "cosine"]))
    reference = {"logits": np.array([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0]])}
    candidate = {"logits": np.array([[2.0, 1.0], [1.0, 0.0], [3.0, 0.0]])}
    acc.update(reference, candidate, np.array([0, 1, 1]))
    assert acc.metrics()["reference"]["accuracy"] == pytest.approx(2 / 3)
    assert acc.metrics()["candidate"]["accuracy"] == pytest.approx(1 / 3)
    assert acc.top1_agreement() == pytest.approx(2 / 3)


def _report(cosine, ref_acc=None, cand_acc=None, gates=Gates()):
    metrics = {}
    if ref_acc is not None:
        metrics = {"reference": {"accuracy": ref_acc}, "candidate": {"accuracy": cand_acc}}
    return Report("onnx-int8", gates, {"path": "model.onnx"},
                  parity={"y": {"cosine": cosine, "max_abs": 0.1, "mean_abs": 0.01, "sqnr_db": math.inf}},
                  metrics=metrics)


def test_gates_decide_the_exit_code():
    assert _report(0.999).exit_code == 0
    assert _report(0.98).exit_code == 1
    assert _report(0.999, 0.95, 0.935).exit_code == 1  # 1.5 points > 1.0
    assert _report(0.999, 0.95, 0.941).exit_code == 0
    assert _report(0.999, 0.95, 0.935, Gates(max_accuracy_drop=2.0)).passed


def test_report_says_which_tolerance_would_have_passed_and_is_strict_json():
    report = _report(0.97, 0.95, 0.93)
    assert report.would_pass_with()["min_cosine"] == 0.97
    assert report.would_pass_with()["max_accuracy_drop"] == pytest.approx(2.0)
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert json.loads(text)["parity"]["y"]["sqnr_db"] is None
    assert "FAIL" in report.to_markdown()


def _gates_of(reference, candidate, name="y"):
    from compress_export.metrics.gates import gate_results

    suite = MetricSuite([name], all_metrics())
    suite.update({name: reference}, {name: candidate}, None)
    return {row["gate"]: row for row in gate_results(Gates(), suite.parity(), suite.metrics())}, suite.parity()[name]


def test_dead_scores_beside_large_boxes_fail_their_own_gate():
    rng = np.random.default_rng(0)
    head = np.concatenate([rng.random((8, 4, 50)) * 300, rng.random((8, 80, 50)) * 0.02], axis=1)
    dead = head.copy()
    dead[:, 4:] = 0.0
    gates, stats = _gates_of(head, dead)
    assert stats["cosine"] > 0.9999  # the per-sample cosine is fooled by the boxes
    assert gates["min_cosine[y channels 0-3]"]["passed"]
    assert not gates["min_cosine[y channels 4-83]"]["passed"]


def test_logits_of_similar_scale_stay_one_group():
    logits = np.random.default_rng(1).normal(size=(16, 10)) * np.arange(1, 11)
    gates, stats = _gates_of(logits, logits + 0.01)
    assert "cosine_groups" not in stats and list(gates) == ["min_cosine[y]"]


def test_one_value_per_sample_is_compared_across_samples_and_by_decision():
    probability = np.random.default_rng(2).random((32, 1))
    gates, stats = _gates_of(probability, 1.0 - probability)
    assert stats["cosine"] == pytest.approx(1.0)  # per sample, a single value is always parallel to itself
    assert not gates["min_cosine[y across samples]"]["passed"]
    assert "min_cosine[y]" not in gates
    assert not gates["min_decision_agreement[y]"]["passed"] and stats["decision_agreement"] < 0.2
    same, stats = _gates_of(probability, probability + 1e-4)
    assert all(row["passed"] for row in same.values()) and stats["decision_agreement"] >= 0.96
