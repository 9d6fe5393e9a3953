"""`--with-baseline`: a bundle carries its FP32 baseline (listed and hashed), and `validate` on another machine
times the artifact beside it, with the A/A check, so the speed-up it reports is that machine's."""

import json

from compress_export.api import validate_bundle
from compress_export.job import PipelineConfig
from compress_export.pipeline import run
from compress_export.validators.bench import BenchSettings

QUICK = BenchSettings(batches=(1,), runs=20, seconds=0.2, min_runs=5, warmup=1)


def test_a_bundle_with_its_baseline_reports_the_speed_up_where_it_is_validated(tmp_path, digits_onnx, digits_data):
    calib, val = digits_data
    result = run(PipelineConfig(model=str(digits_onnx), targets="onnx,onnx-int8", out=tmp_path / "out",
                                calib_data=str(calib), val_data=str(val), bench=None, progress=False,
                                with_baseline=True))
    assert result.failures == []
    bundle = tmp_path / "out" / "onnx-int8"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["baseline"] == {"path": "baseline/model.onnx", "runtime": "onnxruntime"}
    assert "baseline/model.onnx" in manifest["files"]
    assert not (tmp_path / "out" / "onnx" / "baseline").exists()  # the FP32 target is its own baseline
    report = validate_bundle(bundle, bench=QUICK).to_dict()
    assert set(report["bench"]) >= {"reference", "candidate", "ratios", "a_a"}
    assert report["bench"]["ratios"]["speedup_p50_batch1"] > 0 and "1" in report["bench"]["a_a"]
    assert report["machine"]["cpus"] and report["exported_on"]["processor"]
    assert "reference/artifact_outputs.npz" in manifest["files"]
    assert not report["cross_machine"]["output"]["differs"]  # same machine, same kernels
    without = validate_bundle(tmp_path / "out" / "onnx", bench=QUICK).to_dict()
    assert "ratios" not in without["bench"] and "candidate" in without["bench"]
