"""Calibration statistics shared between runs: the same graph, data and settings read them back (the same ranges, the
same bytes); other data collects anew; the cache is no recipe setting."""

import json

from click.testing import CliRunner

from compress_export.cli.main import cli


def export(tmp_path, name, model, calib, *extra):
    out = tmp_path / name
    result = CliRunner().invoke(cli, [str(model), "--to", "onnx-int8", "--calib-data", str(calib), "--no-bench",
                                      "--stats-cache", str(tmp_path / "stats"), "--out", str(out), "-q", *extra])
    assert result.exit_code == 0, result.output
    return out / "onnx-int8"


def test_a_second_calibrator_reads_the_statistics_and_gets_what_a_pass_would(tmp_path, digits_onnx, digits_data):
    calib, _ = digits_data
    first = export(tmp_path, "a", digits_onnx, calib)
    reused = export(tmp_path, "b", digits_onnx, calib, "--calibrator", "percentile")
    alone = CliRunner().invoke(cli, [str(digits_onnx), "--to", "onnx-int8", "--calib-data", str(calib), "--no-bench",
                                     "--calibrator", "percentile", "--out", str(tmp_path / "c"), "-q"])
    assert alone.exit_code == 0, alone.output
    assert json.loads((first / "report.json").read_text())["calibration"]["statistics"] == "collected"
    assert json.loads((reused / "report.json").read_text())["calibration"]["statistics"] == "reused"
    fresh = tmp_path / "c" / "onnx-int8"
    assert (reused / "ranges.json").read_bytes() == (fresh / "ranges.json").read_bytes()
    assert (reused / "model.onnx").read_bytes() == (fresh / "model.onnx").read_bytes()
    assert "stats-cache" not in (reused / "recipe.yaml").read_text()
    other_data = export(tmp_path, "d", digits_onnx, calib, "--calib-samples", "100")
    assert json.loads((other_data / "report.json").read_text())["calibration"]["statistics"] == "collected"


def test_a_corrupt_statistics_file_is_collected_again(tmp_path, digits_onnx, digits_data):
    calib, _ = digits_data
    export(tmp_path, "a", digits_onnx, calib)
    for path in (tmp_path / "stats").glob("*.npz"):
        path.write_bytes(b"not an npz")
    again = export(tmp_path, "b", digits_onnx, calib)
    assert json.loads((again / "report.json").read_text())["calibration"]["statistics"] == "collected"
