import importlib.util
import json

import numpy as np
import pytest

from compress_export.api import validate_bundle
from compress_export.errors import UsageError
from compress_export.exporters.tflite.options import TfliteOptions
from compress_export.pipeline import PipelineConfig, run
from compress_export.specs import QuantRecipe
from compress_export.validators.bench import BenchSettings

QUICK_BENCH = BenchSettings(batches=(1, 8), warmup=1, runs=30, seconds=0.2, min_runs=5)
MISSING = [name for name in ("tensorflow", "keras", "ai_edge_litert") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed "
                                                      "(pip install 'compress-export[tflite]')")


@pytest.fixture(scope="module")
def keras_digits(tmp_path_factory):
    from tests.keras_digits import train

    return train(tmp_path_factory.mktemp("keras-digits"))


def _run(out, keras_digits, targets, **overrides):
    model, calib, val = keras_digits
    settings = dict(model=str(model), targets=targets, out=out, calib_data=str(calib), val_data=str(val),
                    bench=None, progress=False)
    settings.update(overrides)
    return run(PipelineConfig(**settings))


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile", "mse"])
def test_keras_int8_within_one_point_with_each_calibrator(tmp_path, keras_digits, method):
    result = _run(tmp_path / "out", keras_digits, "tflite-int8", recipe=QuantRecipe(method=method))
    report = result.reports[0].to_dict()
    reference = report["metrics"]["reference"]["accuracy"]
    assert reference > 0.95
    assert 100 * (reference - report["metrics"]["candidate"]["accuracy"]) <= 1.0
    assert report["passed"] and result.exit_code == 0
    table = json.loads((tmp_path / "out" / "tflite-int8" / "ranges.json").read_text())
    assert table["method"] == method
    # One range per quantization point: BatchNorm and ReLU fold into the Conv before them, so the first
    # Conv of that branch has none; the Concatenate and the Dense layers do.
    names = set(table["ranges"])
    assert "concatenate" in names and "logits" in names and "conv2d" not in names and "re_lu" in names


def test_int8_output_scale_is_our_range_not_the_converters(tmp_path, keras_digits):
    from ai_edge_litert.interpreter import Interpreter

    _run(tmp_path / "out", keras_digits, "tflite-int8", recipe=QuantRecipe(method="percentile", percentile=99.0))
    bundle = tmp_path / "out" / "tflite-int8"
    lo, hi = json.loads((bundle / "ranges.json").read_text())["ranges"]["logits"]
    runner = Interpreter(model_path=str(bundle / "model.tflite")).get_signature_runner()
    (output,) = runner.get_output_details().values()
    assert np.dtype(output["dtype"]) == np.int8
    scale = output["quantization"][0]
    assert scale == pytest.approx((max(hi, 0) - min(lo, 0)) / 255, rel=1e-5)
    # The converter's own min/max calibration would have spanned the whole calibration range.
    _, calib, _ = keras_digits
    assert hi < 50


def test_float_targets_size_latency_and_revalidation(tmp_path, keras_digits):
    result = _run(tmp_path / "out", keras_digits, "tflite,tflite-fp16,tflite-dynamic,tflite-int8", bench=QUICK_BENCH)
    reports = {r.target: r.to_dict() for r in result.reports}
    assert result.exit_code == 0, {t: r["warnings"] for t, r in reports.items()}
    for target, report in reports.items():
        assert report["parity"]["output_0"]["cosine"] >= 0.99, target
        bench = report["bench"]
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            assert bench["candidate"][key] > 0
        assert bench["reference"]["size_bytes"] == reports["tflite"]["artifact"]["size_bytes"]
    assert reports["tflite"]["bench"]["ratios"]["size"] == pytest.approx(1.0)
    assert 0.45 < reports["tflite-fp16"]["bench"]["ratios"]["size"] < 0.6
    assert reports["tflite-int8"]["bench"]["ratios"]["size"] < 0.35
    assert reports["tflite-dynamic"]["bench"]["ratios"]["size"] < 0.35
    manifest = json.loads((tmp_path / "out" / "tflite-int8" / "manifest.json").read_text())
    io = manifest["artifact"]["tflite_io"]
    assert io["inputs"]["image"]["dtype"] == "int8" and manifest["artifact"]["input_layout"] == "NHWC"
    again = validate_bundle(tmp_path / "out" / "tflite-int8", bench=None)
    assert again.passed
    assert again.parity["output_0"]["cosine"] >= 0.99


def test_float32_io_keeps_float_inputs_and_outputs(tmp_path, keras_digits):
    result = _run(tmp_path / "out", keras_digits, "tflite-int8", target_options={"tflite": TfliteOptions(io="float32")})
    report = result.reports[0].to_dict()
    assert report["passed"]
    manifest = json.loads((tmp_path / "out" / "tflite-int8" / "manifest.json").read_text())
    io = manifest["artifact"]["tflite_io"]
    assert io["inputs"]["image"]["dtype"] == "float32" and io["outputs"]["output_0"]["dtype"] == "float32"


def test_keras_lambda_layer_needs_trust(tmp_path, keras_digits):
    import keras

    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    np.savez(tmp_path / "data.npz", x=np.ones((8, 4), np.float32))
    settings = dict(model=str(path), targets="tflite", out=tmp_path / "out", calib_data=str(tmp_path / "data.npz"),
                    bench=None, progress=False)
    with pytest.raises(UsageError, match="--trust-pickle"):
        run(PipelineConfig(**settings))
    assert run(PipelineConfig(**settings, trust_pickle=True)).exit_code == 0


def test_keras_model_reaches_the_onnx_targets(tmp_path, keras_digits):
    import onnx

    result = _run(tmp_path / "out", keras_digits, "onnx,onnx-int8,trt-int8")
    reports = {r.target: r.to_dict() for r in result.reports}
    assert reports["onnx"]["parity"]["output_0"]["max_abs"] < 1e-4
    reference = reports["onnx-int8"]["metrics"]["reference"]["accuracy"]
    for target in ("onnx-int8", "trt-int8"):
        assert 100 * (reference - reports[target]["metrics"]["candidate"]["accuracy"]) <= 1.0, target
    graph = onnx.load(str(tmp_path / "out" / "onnx" / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["image"]
    assert not graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value")


TORCH_MISSING = [name for name in ("torch", "litert_torch") if importlib.util.find_spec(name) is None]


@pytest.mark.skipif(bool(TORCH_MISSING), reason=f"{', '.join(TORCH_MISSING)} not installed "
                                                 "(pip install 'compress-export[torch,tflite]')")
def test_pytorch_pt2_to_tflite_int8_within_one_point(tmp_path, digits_data):
    import torch

    from compress_export.demo.model import digits_cnn

    program = torch.export.export(digits_cnn(), (torch.zeros(2, 1, 8, 8),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(tmp_path / "digits.pt2"))
    calib, val = digits_data
    result = run(PipelineConfig(model=str(tmp_path / "digits.pt2"), targets="tflite,tflite-dynamic,tflite-int8",
                                out=tmp_path / "out",
                                calib_data=str(calib), val_data=str(val), bench=QUICK_BENCH, progress=False))
    reports = {r.target: r.to_dict() for r in result.reports}
    int8 = reports["tflite-int8"]
    reference = int8["metrics"]["reference"]["accuracy"]
    assert reference > 0.95
    assert 100 * (reference - int8["metrics"]["candidate"]["accuracy"]) <= 1.0
    assert reports["tflite"]["parity"]["output"]["cosine"] > 0.9999
    assert reports["tflite-dynamic"]["passed"] and reports["tflite-dynamic"]["bench"]["ratios"]["size"] < 0.5
    table = json.loads((tmp_path / "out" / "tflite-int8" / "ranges.json").read_text())
    assert table["method"] == "entropy" and len(table["ranges"]) >= 3
    assert any("PT2E observer points" in note for note in int8["notes"])
    manifest = json.loads((tmp_path / "out" / "tflite-int8" / "manifest.json").read_text())
    assert manifest["artifact"]["input_layout"] == "NCHW" and manifest["artifact"]["converter"] == "litert-torch"
    assert int8["bench"]["ratios"]["size"] < 0.5


def test_missing_converter_gives_the_install_hint(tmp_path, digits_data, monkeypatch):
    import sys

    from compress_export.errors import EXIT_MISSING_DEPENDENCY

    monkeypatch.setitem(sys.modules, "litert_torch", None)  # import fails as if not installed
    calib, val = digits_data
    result = run(PipelineConfig(model="compress_export.demo.model:digits_cnn", targets="tflite,onnx",
                                out=tmp_path / "out", calib_data=str(calib), val_data=str(val), bench=None,
                                progress=False))
    (failure,) = result.failures
    assert failure.target == "tflite" and failure.exit_code == result.exit_code == EXIT_MISSING_DEPENDENCY
    assert "pip install 'compress-export[tflite-torch]'" in failure.error
    assert not (tmp_path / "out" / "tflite").exists() and (tmp_path / "out" / "onnx" / "model.onnx").is_file()


def test_keras_qat_to_tflite_int8_within_half_a_point(tmp_path, keras_digits):
    from compress_export.compression.qat_settings import QatSettings

    result = _run(tmp_path / "out", keras_digits, "tflite-int8", compression=(("qat", QatSettings(epochs=1, lr=1e-4)),),
                  recipe=QuantRecipe(method="percentile", percentile=99.0))
    report = result.reports[0].to_dict()
    reference = report["metrics"]["reference"]["accuracy"]
    assert 100 * (reference - report["metrics"]["candidate"]["accuracy"]) <= 0.5
    qat = report["qat"]
    assert qat["steps"] > 0 and qat["learned_ranges"] >= 5 and "accuracy" in qat["ptq"]["metrics"]["candidate"]
    folder = tmp_path / "out" / "tflite-int8"
    assert (folder / "qat_loss.png").is_file() and "## QAT" in (folder / "report.md").read_text()
    table = json.loads((folder / "ranges.json").read_text())
    assert table["method"] == "qat+percentile"


def test_keras_qat_refuses_onnx_targets(tmp_path, keras_digits):
    from compress_export.compression.qat_settings import QatSettings

    with pytest.raises(UsageError, match="applies to tflite-int8"):
        _run(tmp_path / "out", keras_digits, "onnx-int8", compression=(("qat", QatSettings(epochs=1)),))
