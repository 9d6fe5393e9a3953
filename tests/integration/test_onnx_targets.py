import json

import numpy as np
import onnx
import pytest

from compress_export.api import validate_bundle
from compress_export.bundle.manifest import verify_bundle
from compress_export.errors import BundleIntegrityError
from compress_export.pipeline import PipelineConfig, run
from compress_export.specs import QuantRecipe
from compress_export.validators.bench import BenchSettings
from compress_export.validators.fusion import fusion_summary
from tests.conftest import DIGITS_FACTORY, bundle_files

QUICK_BENCH = BenchSettings(batches=(1, 4), warmup=1, runs=20, seconds=0.2, min_runs=3)


def _run(tmp_path, targets, **overrides):
    settings = dict(model=DIGITS_FACTORY, targets=targets, out=tmp_path / "out", bench=None, progress=False)
    settings.update(overrides)
    return run(PipelineConfig(**settings))


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile", "mse"])
def test_digits_int8_keeps_accuracy_with_each_calibrator(tmp_path, digits_data, method):
    calib, val = digits_data
    result = _run(tmp_path, "onnx-int8", calib_data=str(calib), val_data=str(val), recipe=QuantRecipe(method=method))
    report = result.reports[0].to_dict()
    reference = report["metrics"]["reference"]["accuracy"]
    candidate = report["metrics"]["candidate"]["accuracy"]
    assert reference > 0.95
    assert 100 * (reference - candidate) <= 0.5
    assert report["passed"] and result.exit_code == 0
    ranges = json.loads((tmp_path / "out" / "onnx-int8" / "ranges.json").read_text())
    assert ranges["method"] == method and ranges["ranges"]
    model = onnx.load(str(tmp_path / "out" / "onnx-int8" / "model.onnx"))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    executed = fusion_summary(tmp_path / "out" / "onnx-int8" / "model.onnx")
    assert executed["integer_kernels"] == 4 and executed["float_compute"] == 0  # both Conv and both Gemm


def test_bundle_layout_report_fields_and_revalidation(tmp_path, digits_data):
    calib, val = digits_data
    result = _run(tmp_path, "onnx,onnx-fp16,onnx-int8,onnx-dynamic", calib_data=str(calib), val_data=str(val),
                  bench=QUICK_BENCH)
    assert [r.target for r in result.reports] == ["onnx", "onnx-fp16", "onnx-int8", "onnx-dynamic"]
    bundle = tmp_path / "out" / "onnx-int8"
    assert bundle_files(bundle) == ["manifest.json", "model.onnx", "ranges.json", "reference/artifact_outputs.npz",
                                    "reference/inputs.npz", "reference/outputs.npz", "report.json", "report.md",
                                    "tradeoff.png"]
    report = json.loads((bundle / "report.json").read_text())
    assert report["target"] == "onnx-int8" and report["passed"] is True
    assert report["artifact"]["path"] == "model.onnx"
    assert report["artifact"]["size_bytes"] == (bundle / "model.onnx").stat().st_size
    profile = report["time_profile"]  # both Convs and both Gemms run as integer kernels
    assert profile["integer_ms"] > 0 and profile["batch"] == 4
    assert abs(profile["integer_ms"] + profile["quantize_ms"] + profile["float_ms"] - profile["candidate_ms"]) < 1e-6
    assert "## Where the time goes" in (bundle / "report.md").read_text()
    assert {"max_abs", "mean_abs", "cosine", "sqnr_db"} <= set(report["parity"]["output"])
    assert 0.95 < report["top1_agreement"] <= 1.0
    for side in ("reference", "candidate"):
        assert "accuracy" in report["metrics"][side]
        for key in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "throughput_per_s", "peak_rss_mb"):
            assert report["bench"][side][key] > 0
        assert set(report["bench"][side]["by_batch"]) == {"1", "4"}
    assert report["bench"]["ratios"]["size"] < 0.6
    markdown = (bundle / "report.md").read_text()
    assert "| accuracy |" in markdown and "## Compute" in markdown and "## Per-layer error" in markdown
    # Quantization changes neither the MACs nor the parameter count; the digits CNN: 2 Conv + 2 Gemm.
    flops = report["flops"]
    assert flops["candidate"]["macs"] == flops["reference"]["macs"] > 0
    assert flops["candidate"]["parameters"] == flops["reference"]["parameters"]
    assert flops["candidate"]["compute_ops"] == 4 and flops["candidate"]["compute_ops_without_shape"] == 0
    layers = report["layer_error"]
    assert len(layers["tensors"]) >= 4 and len(layers["worst"]) <= 10
    assert all(0.9 < row["cosine"] <= 1.0 + 1e-9 for row in layers["tensors"])
    assert "layer_error" not in json.loads((tmp_path / "out" / "onnx" / "report.json").read_text())
    manifest = verify_bundle(bundle)
    assert manifest["source"]["sha256"] and manifest["data"]["calibration"]["fingerprint"]
    assert manifest["libraries"]["onnxruntime"] and manifest["recipe"]["method"] == "entropy"
    fp16 = onnx.load(str(tmp_path / "out" / "onnx-fp16" / "model.onnx"))
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in fp16.graph.initializer)
    assert (tmp_path / "out" / "tradeoff.png").is_file()
    seconds = json.loads((tmp_path / "out" / "summary.json").read_text())["seconds"]
    assert {"load", "reference", "ranges", "onnx", "onnx-fp16", "onnx-int8", "onnx-dynamic"} <= set(seconds)
    assert seconds["total"] == pytest.approx(sum(v for k, v in seconds.items() if k != "total"), abs=0.05)

    recheck = validate_bundle(bundle, bench=QUICK_BENCH)
    assert recheck.passed
    assert recheck.parity["output"]["cosine"] == pytest.approx(report["parity"]["output"]["cosine"], abs=1e-3)
    (bundle / "reference" / "outputs.npz").write_bytes(b"tampered")
    with pytest.raises(BundleIntegrityError):
        validate_bundle(bundle, bench=None)


def test_same_inputs_give_identical_ranges_and_artifacts(tmp_path, digits_data):
    calib, val = digits_data
    first = _run(tmp_path / "a", "onnx,onnx-int8", calib_data=str(calib), val_data=str(val))
    second = _run(tmp_path / "b", "onnx,onnx-int8", calib_data=str(calib), val_data=str(val))
    assert first.exit_code == second.exit_code == 0
    for name in ("onnx-int8/ranges.json", "onnx-int8/model.onnx", "onnx/model.onnx"):
        assert (tmp_path / "a" / "out" / name).read_bytes() == (tmp_path / "b" / "out" / name).read_bytes(), name


def test_onnx_input_with_held_out_split_and_uneven_batches(tmp_path, digits_onnx, digits_data):
    calib, _ = digits_data
    result = _run(tmp_path, "onnx-int8", model=str(digits_onnx), calib_data=str(calib), calib_batch=7,
                  calib_samples=250)
    report = result.reports[0].to_dict()
    assert report["data"]["calibration"]["samples"] == 200
    assert report["data"]["validation"]["samples"] == 50
    assert "held out 20%" in report["data"]["validation"]["origin"]
    assert report["metrics"]["candidate"]["accuracy"] > 0.9


def test_exported_program_input(tmp_path, digits_data):
    import torch

    from compress_export.demo.model import digits_cnn

    program = torch.export.export(digits_cnn(), (torch.zeros(2, 1, 8, 8),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = tmp_path / "digits.pt2"
    torch.export.save(program, str(path))
    calib, val = digits_data
    result = _run(tmp_path, "onnx", model=str(path), calib_data=str(calib), val_data=str(val))
    report = result.reports[0].to_dict()
    assert report["source"]["framework"] == "torch"
    assert report["parity"]["output"]["max_abs"] < 1e-3
    inputs = onnx.load(str(tmp_path / "out" / "onnx" / "model.onnx")).graph.input
    assert not inputs[0].type.tensor_type.shape.dim[0].HasField("dim_value")  # dynamic batch


def test_tensors_holding_mask_constants_stay_float(tmp_path, masked_model):
    factory, data = masked_model
    result = _run(tmp_path, "onnx-int8", model=factory, calib_data=str(data),
                  recipe=QuantRecipe(method="minmax", include_ops=("MatMul", "Gemm", "Add")))
    report = result.reports[0].to_dict()
    skipped = report["calibration"]["skipped"]
    assert skipped and all("huge constants" in reason or "non-finite" in reason for reason in skipped.values())
    assert any("kept in float" in note for note in report["notes"])
    assert report["parity"]["output"]["cosine"] > 0.9
    graph = onnx.load(str(tmp_path / "out" / "onnx-int8" / "model.onnx")).graph
    quantized = {node.input[0] for node in graph.node if node.op_type == "QuantizeLinear"}
    assert not quantized & set(skipped)
    ranges = json.loads((tmp_path / "out" / "onnx-int8" / "ranges.json").read_text())
    assert all(max(abs(lo), abs(hi)) < 1e8 for lo, hi in ranges["ranges"].values())
    out = np.load(tmp_path / "out" / "onnx-int8" / "reference" / "outputs.npz")["output"]
    assert np.isfinite(out).all()


def test_include_ops_and_exclude_nodes_choose_what_is_quantized(tmp_path, digits_data):
    calib, val = digits_data
    result = _run(tmp_path, "onnx-int8", calib_data=str(calib), val_data=str(val),
                  recipe=QuantRecipe(include_ops=("Conv",), exclude_nodes=r"conv2d_1$"))
    assert result.reports[0].notes[0].startswith("2 nodes quantized")
    graph = onnx.load(str(tmp_path / "out" / "onnx-int8" / "model.onnx")).graph
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    convs = {node.name: node for node in graph.node if node.op_type == "Conv"}
    assert convs["node_conv2d"].input[1] in dequantized
    assert convs["node_conv2d_1"].input[1] not in dequantized
    assert not any(node.op_type == "Gemm" and node.input[1] in dequantized for node in graph.node)


def test_a_finishing_rewrite_that_costs_a_gate_is_undone(tmp_path, digits_data, monkeypatch):
    from compress_export.exporters.registry import Target
    from compress_export.graphs.onnx_io import save

    calib, val = digits_data
    seen = {}

    def ruinous_finish(self, path, feeds):
        model = onnx.load(str(path))
        seen["nodes"] = len(model.graph.node)
        output = model.graph.output[0].name
        for node in model.graph.node:
            node.output[:] = [f"{name}_before" if name == output else name for name in node.output]
        model.graph.node.append(onnx.helper.make_node("Neg", [f"{output}_before"], [output]))  # misses every gate
        save(model, path)
        return ["fast fusions (test): 1 Fused"]

    monkeypatch.setattr(Target, "run_finish", ruinous_finish)
    result = _run(tmp_path, "onnx-int8", calib_data=str(calib), val_data=str(val))
    report = result.reports[0].to_dict()
    assert report["passed"] and result.exit_code == 0
    shipped = onnx.load(str(tmp_path / "out" / "onnx-int8" / "model.onnx"))
    assert len(shipped.graph.node) == seen["nodes"] and "Neg" not in {node.op_type for node in shipped.graph.node}
    assert any(note.startswith("fast fusions undone") for note in report["notes"])
