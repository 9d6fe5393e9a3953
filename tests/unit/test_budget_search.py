"""The budget search's decisions, on a scorer whose answer is known: each tensor's error depends on
which calibrator's range it uses, and a float tensor has none."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compress_export.exporters.onnx.qdq_rewrites import scale_and_zero_point, with_tensor_ranges
from compress_export.metrics.gates import Gates
from compress_export.search.activations import Evaluator, search_budget

BY_METHOD = {
    "minmax": {"a": (0.0, 9.0), "b": (0.0, 9.0), "c": (0.0, 9.0)},
    "entropy": {"a": (0.0, 1.0), "b": (0.0, 1.0), "c": (0.0, 1.0)},
    "mse": {"a": (0.0, 2.0), "b": (0.0, 2.0), "c": (0.0, 2.0)},
}
# Cosine lost by each tensor under each range; the best range differs per tensor.
LOSS = {"a": {9.0: 0.004, 1.0: 0.001, 2.0: 0.002},
        "b": {9.0: 0.004, 1.0: 0.020, 2.0: 0.001},
        "c": {9.0: 0.003, 1.0: 0.030, 2.0: 0.030}}


class KnownScorer(Evaluator):
    def __init__(self, current: str, min_cosine: float):
        super().__init__(None, None, [], Gates(min_cosine=min_cosine))
        self.current = current

    def score(self, float_tensors, ranges=None):
        self.evaluations += 1
        ranges = {**BY_METHOD[self.current], **(ranges or {})}
        lost = sum(LOSS[name][ranges[name][1]] for name in LOSS if name not in set(float_tensors))
        return {"cosine": 1.0 - lost, "accuracy_drop": None}


def test_the_best_calibrator_for_the_whole_graph_is_enough_when_it_meets_the_budget():
    # minmax loses 0.011 in all, mse 0.033, entropy 0.051.
    scorer = KnownScorer("entropy", min_cosine=0.985)
    result = search_budget(scorer, list(LOSS), BY_METHOD, "entropy")
    assert result.met and result.float_tensors == [] and result.ranking == []
    assert result.range_choice.method == "minmax" and result.range_choice.per_tensor == {}
    assert result.evaluations == 3  # baseline and the two other calibrators


def test_per_tensor_ranges_meet_a_budget_no_single_calibrator_meets():
    # Best per tensor: a entropy (0.001), b mse (0.001), c minmax (0.003): 0.995; best single: minmax 0.989.
    scorer = KnownScorer("entropy", min_cosine=0.994)
    result = search_budget(scorer, list(LOSS), BY_METHOD, "entropy")
    assert result.met and result.float_tensors == []
    choice = result.range_choice
    assert choice.method == "minmax" and choice.per_tensor == {"a": "entropy", "b": "mse"}
    assert choice.ranges["a"] == (0.0, 1.0) and choice.ranges["b"] == (0.0, 2.0) and choice.ranges["c"] == (0.0, 9.0)
    assert abs(result.final["cosine"] - 0.995) < 1e-9


def test_float_fallback_comes_last_and_takes_the_most_sensitive_tensor():
    scorer = KnownScorer("entropy", min_cosine=0.997)
    result = search_budget(scorer, list(LOSS), BY_METHOD, "entropy")
    assert result.met and result.float_tensors == ["c"]
    assert result.ranking[0]["tensor"] == "c"


def test_no_alternatives_goes_straight_to_float_fallback():
    scorer = KnownScorer("minmax", min_cosine=0.996)
    result = search_budget(scorer, list(LOSS), {}, "minmax")
    assert result.range_choice is None
    assert result.met and set(result.float_tensors) == {"a", "b"}  # c alone loses 0.003


def test_the_fallback_never_floats_every_activation():
    # Only all three in float would meet 0.999: the search stops one short and says the budget is missed.
    scorer = KnownScorer("minmax", min_cosine=0.999)
    result = search_budget(scorer, list(LOSS), {}, "minmax")
    assert not result.met and len(result.float_tensors) == 2


class LossScorer(Evaluator):
    """Cosine is 1 minus `loss(float tensors)`: interactions a per-tensor table cannot express."""

    def __init__(self, loss, min_cosine: float, costs: dict | None = None):
        super().__init__(None, None, [], Gates(min_cosine=min_cosine), costs=costs or {})
        self.loss = loss

    def score(self, float_tensors, ranges=None):
        self.evaluations += 1
        return {"cosine": 1.0 - self.loss(set(float_tensors)), "accuracy_drop": None}


def _pair(floated: set, first: str, second: str) -> float:
    """Two tensors that help only together (one residual branch rounded twice)."""
    return 0.0 if {first, second} <= floated else 0.01


def test_when_floating_one_at_a_time_finds_no_set_the_search_quantizes_back_from_all_float():
    # a and b help only together; c costs a little on its own.
    scorer = LossScorer(lambda floated: _pair(floated, "a", "b") + (0.0 if "c" in floated else 0.0005), 0.995)
    result = search_budget(scorer, ["a", "b", "c"], {}, "minmax")
    # One at a time: c first (the only single gain), then a gains nothing; b, the last, is never tried.
    # From all three in float, c goes back to INT8 and the budget holds.
    assert result.met and sorted(result.float_tensors) == ["a", "b"]
    assert abs(result.final["cosine"] - 0.9995) < 1e-9 and result.weight_limit["reachable"]


def test_from_the_float_end_the_layer_with_the_most_macs_goes_back_to_int8_first():
    # p and q help only together; big and small each cost a little (per MAC, small costs more cosine than big),
    # and the budget leaves room for one of them.
    costs = {"big": 0.003, "small": 0.0001}
    scorer = LossScorer(lambda floated: _pair(floated, "p", "q") + sum(v for k, v in costs.items() if k not in floated),
                        0.99695, costs={"big": {"macs_share": 0.5}, "small": {"macs_share": 0.01}})
    result = search_budget(scorer, ["big", "small", "p", "q"], {}, "minmax")
    # Either of big and small fits the budget back in INT8, not both: big brings back 50x the MACs, though
    # small is the cheaper one in cosine, alone and per MAC.
    assert result.met and sorted(result.float_tensors) == ["p", "q", "small"]


def test_a_tensor_refused_early_goes_back_to_int8_in_a_later_sweep():
    # x's rounding hurts only while y is float (the two cancel); a and b help only together; c costs a little.
    def loss(floated: set) -> float:
        x, y = "x" not in floated, "y" not in floated  # quantized?
        return (_pair(floated, "a", "b") + (0.0 if "c" in floated else 0.0005)
                + (0.0008 if y else (0.01 if x else 0.0)))

    scorer = LossScorer(loss, 0.999, costs={"x": {"macs_share": 0.5}, "y": {"macs_share": 0.01}})
    result = search_budget(scorer, ["a", "b", "c", "x", "y"], {}, "minmax")
    # First sweep: x (most MACs) is refused while y is float, y goes back; second sweep: x fits.
    assert result.met and sorted(result.float_tensors) == ["a", "b", "c"]


class RoundedWeightsScorer(KnownScorer):
    """Every configuration also loses 0.02 to the weights' rounding, which no float activation gives back."""

    def score(self, float_tensors, ranges=None):
        score = super().score(float_tensors, ranges)
        return {**score, "cosine": score["cosine"] - 0.02}


def test_a_budget_that_every_activation_in_float_misses_is_reported_as_the_weights_doing():
    from compress_export.search.sensitivity_report import markdown

    result = search_budget(RoundedWeightsScorer("minmax", min_cosine=0.99), list(LOSS), {}, "minmax")
    limit = result.weight_limit
    assert not result.met and not limit["reachable"]
    assert limit["missed"] == [{"gate": "min_cosine", "value": limit["every_activation_float"]["cosine"],
                                "limit": 0.99}]
    assert abs(limit["every_activation_float"]["cosine"] - 0.98) < 1e-9
    text = "\n".join(markdown(result.to_dict()))
    assert "Every activation in float (only the weights INT8) misses the budget too (min_cosine 0.9800" in text


def _qdq_model(dtype: int) -> onnx.ModelProto:
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["y"], name="dq")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
                              [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
                               helper.make_tensor("z", dtype, [], [0])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)


def test_rewritten_ranges_change_what_the_pair_rounds_to():
    import onnxruntime as ort

    model = with_tensor_ranges(_qdq_model(TensorProto.UINT8), {"x": (-1.0, 3.0)})
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.array([-2.0, -1.0, 0.5, 5.0], np.float32)
    y = session.run(None, {"x": x})[0]
    scale, zero_point = scale_and_zero_point(-1.0, 3.0, np.dtype(np.uint8))
    assert abs(scale - 4.0 / 255) < 1e-9 and zero_point == 64
    np.testing.assert_allclose(y, [-64 * scale, -64 * scale, round(0.5 / scale) * scale, 191 * scale], rtol=1e-6)


def test_symmetric_int8_ranges_keep_zero_point_zero():
    scale, zero_point = scale_and_zero_point(-1.0, 3.0, np.dtype(np.int8))
    assert zero_point == 0 and abs(scale - 6.0 / 255) < 1e-9


def test_slow_causes_name_unfused_pairs_and_float_islands():
    from compress_export.validators.fusion import slow_causes

    summary = {"integer_kernels": 2, "float_compute": 5, "unfused_dequantize": 3,
               "unfused_readers": ["Add add_1", "Softmax sm", "Mul m"], "ops": {}}
    causes = slow_causes(summary)
    assert any("3 activation DequantizeLinear left unfused" in c and "Add add_1" in c for c in causes)
    assert any("5 of 7 compute ops still run in float" in c for c in causes)
    (fused,) = slow_causes({"integer_kernels": 9, "float_compute": 1, "unfused_dequantize": 0, "unfused_readers": [],
                            "ops": {}})
    assert fused.startswith("no structural cause: all 9 quantized ops run as integer kernels")


def test_slow_causes_name_the_float_node_the_time_profile_found():
    from compress_export.validators.fusion import slow_causes
    from compress_export.validators.time_profile import split

    fused = {"integer_kernels": 4, "float_compute": 0, "unfused_dequantize": 0, "unfused_readers": [], "ops": {}}
    profile = split({("conv", "QLinearConv"): 0.1, ("Transpose_7", "Transpose"): 0.19, ("pool", "MaxPool"): 0.01},
                    {("conv", "Conv"): 0.4}, batch=32)
    (cause,) = slow_causes(fused, profile)
    assert cause == 'float ops take 67% of its time ("Where the time goes"), the most Transpose `Transpose_7` at 63%'
    quick = split({("conv", "QLinearConv"): 0.9, ("Transpose_7", "Transpose"): 0.1}, {("conv", "Conv"): 0.4}, 32)
    assert slow_causes(fused, quick)[0].startswith("no structural cause")


class SubsampleScorer(Evaluator):
    """The subsample reads 0.002 better than the whole validation set: a set that just meets the budget on the
    subsample misses it on the whole set."""

    def __init__(self, min_cosine: float):
        super().__init__(None, None, ["subsample"], Gates(min_cosine=min_cosine), confirm=["whole set"])

    def _session(self, float_tensors, ranges, exact=True):
        return set(float_tensors)

    def _run(self, floated, batches):
        lost = sum(LOSS[name][9.0] for name in LOSS if name not in floated)
        return {"cosine": 1.0 - lost + (0.002 if batches == ["subsample"] else 0.0), "accuracy_drop": None}


def test_a_set_that_meets_the_budget_on_the_subsample_is_scored_on_the_whole_set():
    # Subsample: a alone in float reads 0.995 and would stop the search; the whole set reads 0.993 for it.
    scorer = SubsampleScorer(min_cosine=0.995)
    result = search_budget(scorer, list(LOSS), {}, "minmax")
    assert result.met and sorted(result.float_tensors) == ["a", "c"]
    assert abs(result.final["cosine"] - 0.996) < 1e-9  # the whole set's number, not the subsample's 0.998
    assert scorer.confirmations >= 2


class ExportAgainScorer(Evaluator):
    """A target that exports again: the exported graph with a tensor's nodes in float loses 0.002 more than the
    bypassed pair of the first export says (more layers, another precision)."""

    def __init__(self, min_cosine: float):
        super().__init__(None, None, ["subsample"], Gates(min_cosine=min_cosine), build=lambda tensors, ranges: None)
        self.exact_trials = 0

    def _session(self, float_tensors, ranges, exact=True):
        self.exact_trials += exact
        return exact, set(float_tensors)

    def _run(self, session, batches):
        exact, floated = session
        lost = sum(LOSS[name][9.0] for name in LOSS if name not in floated)
        return {"cosine": 1.0 - lost - (0.002 if exact and floated else 0.0), "accuracy_drop": None}


def test_a_target_that_exports_again_is_decided_on_its_exported_graph():
    # Bypassed, a alone in float reads 0.995 and meets 0.994; exported, 0.993: the search needs a second tensor.
    scorer = ExportAgainScorer(min_cosine=0.994)
    result = search_budget(scorer, list(LOSS), {}, "minmax")
    assert result.met and len(result.float_tensors) == 2
    assert abs(result.final["cosine"] - (1.0 - 0.003 - 0.002)) < 1e-9 or abs(result.final["cosine"] - 0.994) < 1e-9
    assert scorer.exact_trials < result.evaluations  # the ranking read cheap rewrites


class EstimatedScorer(Evaluator):
    """Eight tensors losing 0.001 each; the exported graph loses 0.0012 more than the bypassed estimate."""

    def __init__(self, min_cosine: float):
        super().__init__(None, None, ["subsample"], Gates(min_cosine=min_cosine), build=lambda tensors, ranges: None)
        self.exact_trials = 0

    def _session(self, float_tensors, ranges, exact=True):
        exact = exact and not self.estimating
        self.exact_trials += exact
        return exact, set(float_tensors)

    def _run(self, session, batches):
        exact, floated = session
        return {"cosine": 1.0 - 0.001 * (8 - len(floated)) - (0.0012 if exact else 0.0), "accuracy_drop": None}


def test_a_target_that_exports_again_searches_on_estimates_and_exports_only_to_confirm():
    from compress_export.search.estimated import search_estimated

    names = [f"t{index}" for index in range(8)]
    # Estimated, 5 in float meet 0.9965 (0.997); exported they read 0.9958: 7 exported meet, then 6 (0.9968).
    scorer = EstimatedScorer(min_cosine=0.9965)
    result = search_estimated(scorer, names, {}, "minmax")
    assert result.met and len(result.float_tensors) == 6 and abs(result.final["cosine"] - 0.9968) < 1e-9
    assert scorer.exact_trials == 3 and not scorer.estimating  # the estimate's choice, then 7, then 6
    scorer = EstimatedScorer(min_cosine=0.99)  # the estimate's choice ships as it is: one export
    result = search_estimated(scorer, names, {}, "minmax")
    assert result.met and scorer.exact_trials == 1 and abs(result.final["cosine"] - 0.9908) < 1e-9


class EstimatesPastTheirTimeScorer(EstimatedScorer):
    """The estimate phase runs out of its share of the time limit at its first check; the exports have time."""

    def __init__(self, min_cosine: float):
        super().__init__(min_cosine)
        self.out_of_time_at_export: list[bool] = []

    def out_of_time(self):
        self.stopped = self.stopped or self.estimating
        return super().out_of_time()

    def _session(self, float_tensors, ranges, exact=True):
        if exact and not self.estimating:
            self.out_of_time_at_export.append(self.out_of_time())
        return super()._session(float_tensors, ranges, exact)


def test_the_estimates_deadline_does_not_stop_the_confirming_exports():
    from compress_export.search.estimated import search_estimated

    scorer = EstimatesPastTheirTimeScorer(min_cosine=0.9965)
    result = search_estimated(scorer, [f"t{index}" for index in range(8)], {}, "minmax")
    assert result.met and result.stopped  # the report says the search stopped at its time limit
    assert scorer.out_of_time_at_export == [False]  # but the export that confirms it still had time


class OverflowingExportScorer(EstimatedScorer):
    """The export with any tensor in float overflows (FP16 float layers past their range): its outputs read cosine 0."""

    def _run(self, session, batches):
        exact, floated = session
        if exact and floated:
            return {"cosine": 0.0, "accuracy_drop": None}
        return {"cosine": 1.0 - 0.001 * (8 - len(floated)), "accuracy_drop": None}


def test_an_export_worse_than_the_first_one_never_ships_when_nothing_meets_the_budget():
    from compress_export.search.estimated import search_estimated

    scorer = OverflowingExportScorer(min_cosine=0.9995)  # estimated: 7 in float meet it; exported, they read 0
    result = search_estimated(scorer, [f"t{index}" for index in range(8)], {}, "minmax")
    assert not result.met and result.float_tensors == [] and result.final == result.baseline
    assert abs(result.final["cosine"] - 0.992) < 1e-9


def test_the_float_set_is_found_in_a_few_trials_not_one_per_tensor():
    # 64 tensors; each costs less than the one before it; the budget needs the 50 costliest in float.
    names = [f"t{index:02d}" for index in range(64)]
    cost = {name: 0.001 * (64 - index) / 64 for index, name in enumerate(names)}
    everything = sum(cost.values())
    needed = everything - sum(cost[name] for name in names[:50])
    scorer = LossScorer(lambda floated: sum(v for k, v in cost.items() if k not in floated), 1.0 - needed - 1e-9)
    result = search_budget(scorer, names, {}, "minmax")
    assert result.met and sorted(result.float_tensors) == names[:50]
    ranking = 65  # the baseline and one trial per tensor
    assert result.evaluations - ranking <= 15  # adding one tensor at a time took 50 trials


def test_past_the_time_limit_the_way_back_to_int8_stops_at_the_first_set_that_ships():
    costs = {name: 0.0001 for name in "cdefgh"}
    scorer = LossScorer(lambda floated: _pair(floated, "a", "b") + sum(v for k, v in costs.items() if k not in floated),
                        0.999)
    unlimited = search_budget(scorer, ["a", "b", *costs], {}, "minmax")
    scorer.deadline = 0.0  # long past
    limited = search_budget(scorer, ["a", "b", *costs], {}, "minmax")
    assert unlimited.met and sorted(unlimited.float_tensors) == ["a", "b"] and not unlimited.stopped
    assert limited.met and limited.stopped and limited.to_dict()["stopped_at_time_limit"]
    assert {"a", "b"} < set(limited.float_tensors) and len(limited.float_tensors) < 8  # something came back
    from compress_export.search.sensitivity_report import markdown

    said = " ".join(markdown(limited.to_dict()))
    assert "the budget holds" in said and "the float set above meets the budget" in said
    missed = {**limited.to_dict(), "budget_met": False}  # a search that ran out of time before anything met it
    said = " ".join(markdown(missed))
    assert "no fallback set meets the budget" in said and "meets the budget;" not in said
    assert "before any float set met the budget" in said


def test_an_overflowed_tensors_infinite_error_ranks_first_and_still_plots(tmp_path):
    import math

    from compress_export.search.activations import order
    from compress_export.search.sensitivity_report import plot_sensitivity

    rows = [{"tensor": "fine", "cosine_gain": 0.1, "macs_share": 0.1, "local_error": 0.2},
            {"tensor": "overflowed", "cosine_gain": math.inf, "macs_share": 0.5, "local_error": math.inf}]
    order(rows)
    assert rows[0]["tensor"] == "overflowed"
    assert plot_sensitivity(rows, tmp_path / "sensitivity.png") and (tmp_path / "sensitivity.png").stat().st_size
