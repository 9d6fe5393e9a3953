"""PTQ weight steps through the pipeline: a listed step always reaches the shipped weights, `auto` lets the budget
search try them (judged by the weights alone), and either way the bundle is what was measured, byte for byte."""

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compress_export.job import PipelineConfig
from compress_export.metrics.gates import Gates
from compress_export.pipeline import run
from compress_export.specs import QuantRecipe


def spread_cnn(path):
    """Conv (channel ranges 0.02..5) -> Relu -> Conv -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(3)
    first = rng.normal(0, 1, (8, 2, 3, 3)) * np.geomspace(0.02, 5, 8).reshape(-1, 1, 1, 1)
    inits = [numpy_helper.from_array(first.astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.2, 8).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.5, (4, 8)).astype(np.float32), "w3")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["h1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["h2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["h2"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w3"], ["y"], name="head", transB=1)]
    graph = helper.make_graph(nodes, "spread",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 10, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _run(tmp_path, name: str, steps: str, gates: Gates, target: str = "onnx-int8"):
    rng = np.random.default_rng(0)
    for split, count in (("calib", 48), ("val", 24)):
        data = rng.normal(size=(count, 2, 10, 10)) + 0.5 * rng.normal(size=(count, 2, 1, 1))
        np.savez(tmp_path / f"{split}.npz", x=data.astype(np.float32))
    result = run(PipelineConfig(model=str(spread_cnn(tmp_path / "cnn.onnx")), targets=target,
                                out=tmp_path / name, calib_data=str(tmp_path / "calib.npz"),
                                val_data=str(tmp_path / "val.npz"), recipe=QuantRecipe(weight_steps=steps),
                                gates=gates, bench=None, progress=False))
    assert not result.failures, [failure.error for failure in result.failures]
    bundle = tmp_path / name / target
    return json.loads((bundle / "report.json").read_text()), bundle / "model.onnx"


def _weights(path) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in onnx.load(str(path)).graph.initializer
            if init.name.endswith("_quantized")}


def test_listed_steps_reach_the_shipped_weights_and_the_same_run_writes_the_same_bytes(tmp_path):
    _, plain = _run(tmp_path, "plain", "none", Gates())
    report, stepped = _run(tmp_path, "stepped", "learned-rounding,bias-correction", Gates())
    _, again = _run(tmp_path, "again", "learned-rounding,bias-correction", Gates())
    assert report["ptq"]["steps"] == ["learned-rounding", "bias-correction"]
    notes = " ".join(report["notes"])
    assert "PTQ weight steps: learned-rounding (3), bias-correction (3)" in notes
    before, after = _weights(plain), _weights(stepped)
    assert set(after) - set(before) == {"conv2.corrected_bias_quantized", "head.corrected_bias_quantized"}
    assert any(not np.array_equal(before[name], after[name]) for name in ("w1_quantized", "w2_quantized"))
    assert stepped.read_bytes() == again.read_bytes()


def test_auto_tries_the_steps_only_where_the_plain_export_misses(tmp_path):
    met, _ = _run(tmp_path, "met", "auto", Gates(min_cosine=0.5))
    assert not any("PTQ weight steps" in note for note in met["notes"])
    missed, _ = _run(tmp_path, "missed", "auto", Gates(min_cosine=1.0))
    tried = next(note for note in missed["notes"] if note.startswith("PTQ weight steps"))
    assert "weights alone" in tried or "none kept" in tried
    assert missed["passed"] is False and missed["sensitivity"]["budget_met"] is False


def test_a_target_that_exports_again_after_its_search_keeps_the_weight_steps_record(tmp_path):
    report, _ = _run(tmp_path, "trt", "bias-correction", Gates(min_cosine=1.0), target="trt-int8")
    assert report["sensitivity"]["evaluations"] > 1  # the search ran and the target exported again
    assert report["ptq"]["steps"] == ["bias-correction"]
    assert any(note.startswith("PTQ weight steps: bias-correction") for note in report["notes"])
