import json

import numpy as np
import onnx
import pytest

from compress_export.api import validate_bundle
from compress_export.pipeline import PipelineConfig, run
from compress_export.specs import QuantRecipe
from compress_export.validators.bench import BenchSettings
from tests.conftest import DIGITS_FACTORY, bundle_files
from tests.integration.test_sensitivity import PLANTED

pytest.importorskip("openvino", reason="openvino not installed")

QUICK_BENCH = BenchSettings(batches=(1, 4), warmup=1, runs=20, seconds=0.2, min_runs=3)


def _run(tmp_path, targets, **overrides):
    settings = dict(model=DIGITS_FACTORY, targets=targets, out=tmp_path / "out", bench=None, progress=False)
    settings.update(overrides)
    return run(PipelineConfig(**settings))


def _ir_ops(path) -> dict[str, int]:
    from compress_export.runtimes.openvino import read_model

    counts: dict[str, int] = {}
    for op in read_model(path).get_ordered_ops():
        counts[op.get_type_name()] = counts.get(op.get_type_name(), 0) + 1
    return counts


def test_openvino_targets_write_ir_bundles_that_validate(tmp_path, digits_data):
    calib, val = digits_data
    result = _run(tmp_path, "openvino,openvino-fp16,openvino-int8", calib_data=str(calib), val_data=str(val))
    assert result.exit_code == 0, [r.to_dict()["gate_results"] for r in result.reports]
    reports = {r.target: r.to_dict() for r in result.reports}
    for name, report in reports.items():
        bundle = tmp_path / "out" / name
        assert {"model.xml", "model.bin", "manifest.json"} <= set(bundle_files(bundle))
        assert report["artifact"]["runtime"] == "openvino"
        # the IR's size is the graph and its weights together
        assert report["artifact"]["size_bytes"] == sum((bundle / f).stat().st_size for f in ("model.xml", "model.bin"))
        assert validate_bundle(bundle).passed
    assert reports["openvino"]["parity"]["output"]["cosine"] > 0.99999
    assert reports["openvino"]["metrics"]["candidate"]["accuracy"] == reports["openvino"]["metrics"]["reference"][
        "accuracy"]
    fp32, fp16 = (tmp_path / "out" / name / "model.bin" for name in ("openvino", "openvino-fp16"))
    assert fp16.stat().st_size < 0.6 * fp32.stat().st_size
    ops = _ir_ops(tmp_path / "out" / "openvino-int8" / "model.xml")
    assert ops.get("FakeQuantize", 0) >= 4  # every Conv and Gemm reads quantized inputs
    assert "FakeQuantize" not in _ir_ops(tmp_path / "out" / "openvino" / "model.xml")
    assert json.loads((tmp_path / "out" / "openvino-int8" / "ranges.json").read_text())["ranges"]
    int8 = reports["openvino-int8"]
    assert 100 * (int8["metrics"]["reference"]["accuracy"] - int8["metrics"]["candidate"]["accuracy"]) <= 1.0


def test_openvino_int8_is_byte_identical_across_runs(tmp_path, digits_data):
    calib, val = digits_data
    files = []
    for attempt in ("a", "b"):
        _run(tmp_path / attempt, "openvino-int8", calib_data=str(calib), val_data=str(val))
        bundle = tmp_path / attempt / "out" / "openvino-int8"
        files.append([(bundle / name).read_bytes() for name in ("model.xml", "model.bin", "ranges.json")])
    assert files[0] == files[1]


def test_each_artifact_is_timed_against_fp32_in_every_runtime_of_the_run(tmp_path, digits_data):
    calib, val = digits_data
    result = _run(tmp_path, "onnx-int8,openvino-int8", calib_data=str(calib), val_data=str(val), bench=QUICK_BENCH)
    for report in result.reports:
        bench = report.to_dict()["bench"]
        assert set(bench["fp32_runtimes"]) == {"onnxruntime", "openvino"}
        for batch, runtime in bench["fastest_fp32"].items():
            p50 = bench["fp32_runtimes"][runtime][batch]
            assert p50 == min(times[batch] for times in bench["fp32_runtimes"].values())
            assert bench["ratios_vs_fastest_fp32"][f"speedup_p50_batch{batch}"] == pytest.approx(
                p50 / bench["candidate"]["by_batch"][batch]["p50_ms"])
        assert "FP32 in" in (tmp_path / "out" / report.target / "report.md").read_text()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    for batch, best in summary["fastest_passing"].items():
        p50s = {t["target"]: t["report"]["bench"]["candidate"]["by_batch"][batch]["p50_ms"]
                for t in summary["targets"] if t["passed"]}
        assert best["target"] == min(p50s, key=p50s.get) and best["p50_ms"] == p50s[best["target"]]


def test_openvino_int8_search_runs_its_trials_in_openvino(tmp_path):
    """The planted outlier wrecks INT8 in any runtime; the search (trials compiled by OpenVINO) floats it, and the IR
    exported again with that fallback meets the budget in OpenVINO."""
    data = tmp_path / "data.npz"
    np.savez(data, x=np.random.default_rng(0).normal(size=(160, 16)).astype(np.float32))
    result = run(PipelineConfig(model=PLANTED, targets="openvino-int8", out=tmp_path / "out", calib_data=str(data),
                                bench=None, progress=False, recipe=QuantRecipe(method="minmax")))
    report = result.reports[0].to_dict()
    search = report["sensitivity"]
    assert search["all_quantized"]["cosine"] < 0.99 and search["budget_met"]
    assert search["kept_in_float"] and search["float_nodes"]
    assert report["passed"] and report["parity"]["output"]["cosine"] >= 0.99
    assert "model.onnx" not in bundle_files(tmp_path / "out" / "openvino-int8")  # the searched graph stays behind
    # Compiled the way a user would (no settings), the IR computes what the report measured: it carries the options
    # that keep the fallback in float (OpenVINO would otherwise quantize that activation at run time).
    import openvino as ov

    x = np.random.default_rng(5).normal(size=(32, 16)).astype(np.float32)
    compiled = ov.Core().compile_model(str(tmp_path / "out" / "openvino-int8" / "model.xml"), "CPU")
    produced = np.asarray(compiled({"x": x})[0])
    expected = _torch_reference(x)
    cosine = float((produced * expected).sum() / np.linalg.norm(produced) / np.linalg.norm(expected))
    assert cosine >= 0.99


def _torch_reference(x: np.ndarray) -> np.ndarray:
    import torch

    from tests.planted_outliers import factory

    with torch.no_grad():
        return factory()(torch.from_numpy(x)).numpy()


def test_openvino_trial_session_computes_what_the_runner_computes(tmp_path, digits_onnx):
    from compress_export.runtimes import open_runner
    from compress_export.search.trial_session import trial_session

    feeds = {"image": np.random.default_rng(1).normal(size=(3, 1, 8, 8)).astype(np.float32)}
    session = trial_session(onnx.load(str(digits_onnx)), "openvino")
    names = [output.name for output in session.get_outputs()]
    with open_runner("openvino", str(digits_onnx)) as runner:
        expected = runner.infer(feeds)
    assert list(expected) == names
    np.testing.assert_array_equal(session.run(names, feeds)[0], expected[names[0]])


def test_an_unreadable_ir_is_one_line_exit_4(tmp_path):
    from compress_export.errors import ExportError
    from compress_export.runtimes import open_runner

    bad = tmp_path / "model.xml"
    bad.write_text("<net name='x'><layers><layer id='0' type='Nonsense'/></layers></net>")
    with pytest.raises(ExportError, match="OpenVINO cannot read model.xml") as caught:
        open_runner("openvino", str(bad))
    assert caught.value.exit_code == 4 and "\n" not in str(caught.value)
