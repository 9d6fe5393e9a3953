"""A fleet file is checked whole before anything runs: every fault ends in one line and exit 2, nothing written."""

import pytest
from click.testing import CliRunner

from compress_export.cli.main import cli, export_command
from compress_export.fleet.fleet_file import read_fleet


def fleet_text(model, calib, recipes="  int8: {to: [onnx-int8]}\n", extra=""):
    return f"models:\n  digits: {{model: {model}, calib-data: {calib}}}\nrecipes:\n{recipes}{extra}"


def sweep(tmp_path, text):
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["sweep", str(path), "--out", str(tmp_path / "out"), "-q"])
    return result


@pytest.mark.parametrize(("fault", "message"), [
    (lambda m, c: fleet_text(m, c, extra="jobs: 3\n"), "unknown key 'jobs'"),
    (lambda m, c: fleet_text("missing.onnx", c), "model missing.onnx does not exist"),
    (lambda m, c: fleet_text(m, c, "  int8: {to: [onnx-int8], min-cosine: high}\n"), "min-cosine"),
    (lambda m, c: fleet_text(m, c, "  int8: {to: [onnx-int9]}\n"), "unknown target 'onnx-int9'"),
    (lambda m, c: fleet_text(m, c, "  int8: {to: [onnx-int8], calibratr: entropy}\n"), "did you mean 'calibrator'"),
    (lambda m, c: fleet_text(m, c, "  int8: {to: [onnx-int8], out: elsewhere}\n"), "out is set by the sweep"),
    (lambda m, c: fleet_text(m, c, "  int8: {to: [onnx-int8], calib-data: x.npz}\n"), "calib"),
    (lambda m, c: fleet_text(m, c, extra="matrix:\n  digits: [int4]\n"), "no recipe 'int4'"),
    (lambda m, c: fleet_text(m, c, extra="matrix:\n  other: [int8]\n"), "no such model"),
    (lambda m, c: fleet_text(m, c, "  int8: {to: [onnx-int8], input: 'x:1,2'}\n"), "bad dimension"),
    (lambda m, c: "models: [a, b]\nrecipes: {}\n", "models: is a mapping"),
    (lambda m, c: fleet_text(m, c, "  ../up: {to: [onnx-int8]}\n"), "names a folder"),
    (lambda m, c: "models: {a: {model: x}\n", "not valid YAML"),
    (lambda m, c: fleet_text(m, c, "  int8: {to: [[onnx-int8, [onnx]]]}\n"), "a list of plain values"),
    (lambda m, c: f"models:\n  fleet.json: {{model: {m}}}\nrecipes:\n  a: {{to: onnx}}\n", "a file the sweep writes"),
])
def test_a_bad_fleet_file_is_one_line_and_exit_2(tmp_path, digits_onnx, digits_data, fault, message):
    result = sweep(tmp_path, fault(digits_onnx, digits_data[0]))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_the_matrix_expands_to_jobs_with_paths_beside_the_fleet_file(tmp_path, digits_onnx, digits_data):
    calib, _ = digits_data
    (tmp_path / "model.onnx").write_bytes(digits_onnx.read_bytes())
    (tmp_path / "fleet.yaml").write_text(f"""
models:
  a: {{model: model.onnx, calib-data: {calib}}}
  b: {{model: model.onnx, calib-data: {calib}}}
recipes:
  int8: {{to: [onnx-int8]}}
  strict: {{gates: {{min-cosine: 0.999}}, to: onnx-int8}}
matrix:
  b: [strict]
""")
    fleet = read_fleet(tmp_path / "fleet.yaml", export_command)
    assert [job.name for job in fleet.jobs] == ["a/int8", "a/strict", "b/strict"]
    assert fleet.jobs[0].values["model"] == str((tmp_path / "model.onnx").resolve())
    assert fleet.jobs[1].values["min_cosine"] == 0.999 and not fleet.jobs[1].trains
