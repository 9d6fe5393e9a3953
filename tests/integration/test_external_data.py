"""Models over 2 GB keep their weights in external data. The size is faked: a small model saved with
external data, and the threshold lowered so that every model the run writes uses external data too."""

import json

import numpy as np
import onnx
import pytest

from compress_export.api import validate_bundle
from compress_export.graphs import onnx_io
from compress_export.pipeline import PipelineConfig, run
from tests.conftest import bundle_files

TARGETS = ("onnx", "onnx-fp16", "onnx-int8", "onnx-dynamic", "trt-int8")


@pytest.fixture
def external_model(tmp_path, digits_onnx):
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "digits.onnx"
    onnx.save_model(onnx.load(str(digits_onnx)), str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=1024)
    assert (folder / "weights.bin").stat().st_size > path.stat().st_size
    return path


def test_a_model_with_external_data_exports_to_every_onnx_target_and_validates(tmp_path, external_model, digits_data,
                                                                               monkeypatch):
    monkeypatch.setattr(onnx_io, "EXTERNAL_DATA_BYTES", 1024)
    calib, val = digits_data
    result = run(PipelineConfig(model=str(external_model), targets=",".join(TARGETS), out=tmp_path / "out",
                                calib_data=str(calib), val_data=str(val), bench=None, progress=False))
    assert result.exit_code == 0
    for target in TARGETS:
        bundle = tmp_path / "out" / target
        files = bundle_files(bundle)
        assert "model.onnx.data" in files, target
        report = json.loads((bundle / "report.json").read_text())
        assert report["artifact"]["size_bytes"] == sum((bundle / name).stat().st_size
                                                      for name in ("model.onnx", "model.onnx.data"))
        assert validate_bundle(bundle, bench=None).passed, target
    accuracy = json.loads((tmp_path / "out" / "onnx-int8" / "report.json").read_text())["metrics"]
    assert accuracy["reference"]["accuracy"] - accuracy["candidate"]["accuracy"] <= 0.01
    source = json.loads((tmp_path / "out" / "onnx" / "manifest.json").read_text())["source"]
    assert source["sha256"] and source["model"] == str(external_model)


def test_a_missing_external_data_file_is_a_one_line_usage_error(tmp_path, external_model, digits_data):
    from compress_export.errors import UsageError

    (external_model.parent / "weights.bin").unlink()
    calib, _ = digits_data
    with pytest.raises(UsageError, match="weights.bin, which is missing"):
        run(PipelineConfig(model=str(external_model), targets="onnx", out=tmp_path / "out", calib_data=str(calib),
                           bench=None, progress=False))


def test_large_models_are_written_with_one_data_file(tmp_path, digits_onnx, monkeypatch):
    monkeypatch.setattr(onnx_io, "EXTERNAL_DATA_BYTES", 1024)
    model = onnx.load(str(digits_onnx))
    target = tmp_path / "m.onnx"
    onnx_io.save(onnx.load(str(digits_onnx)), target)
    onnx_io.save(onnx.load(str(digits_onnx)), target)  # again: the data file is replaced, not appended to
    assert onnx_io.external_files(target) == [tmp_path / "m.onnx.data"]
    size = (tmp_path / "m.onnx.data").stat().st_size
    assert size < 1.5 * sum(np.prod(init.dims) * 4 for init in model.graph.initializer)
    assert onnx_io.size_on_disk(target) == target.stat().st_size + size
