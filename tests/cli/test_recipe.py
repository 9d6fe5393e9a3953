"""Recipes: a versioned YAML file runs the job, unknown keys are errors, the command line overrides the
file, and the recipe each bundle keeps runs the same job again to the same bytes."""

import yaml
from click.testing import CliRunner

from compress_export.cli.main import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def write(path, text):
    path.write_text(text)
    return path


def test_a_recipe_runs_the_job_and_the_bundle_recipe_runs_it_again(tmp_path, digits_onnx, digits_data):
    calib, _ = digits_data
    recipe = write(tmp_path / "recipe.yaml", f"""
model: {digits_onnx}
to: [onnx-int8]
data:
  calib-data: {calib}
  calib_samples: 120
gates:
  min-cosine: 0.97
no-bench: true
seed: 5
""")
    first = invoke("run", recipe, "--out", tmp_path / "a", "--quiet")
    assert first.exit_code in (0, 1), first.output
    resolved = yaml.safe_load((tmp_path / "a" / "onnx-int8" / "recipe.yaml").read_text())
    assert resolved["min-cosine"] == 0.97 and resolved["calib-samples"] == 120 and resolved["seed"] == 5
    assert resolved["to"] == "onnx-int8" and resolved["model"] == str(digits_onnx.resolve())
    manifest = yaml.safe_load((tmp_path / "a" / "onnx-int8" / "manifest.json").read_text())
    assert "recipe.yaml" in manifest["files"]
    again = invoke("run", tmp_path / "a" / "onnx-int8" / "recipe.yaml", "--out", tmp_path / "b", "--quiet")
    assert again.exit_code == first.exit_code, again.output
    model = "onnx-int8/model.onnx"
    assert (tmp_path / "a" / model).read_bytes() == (tmp_path / "b" / model).read_bytes()


def test_the_command_line_overrides_the_recipe(tmp_path, digits_onnx, digits_data):
    calib, _ = digits_data
    recipe = write(tmp_path / "recipe.yaml", f"model: {digits_onnx}\nto: onnx-int8\ncalib-data: {calib}\n"
                                             "no-bench: true\nmin-cosine: 0.5\n")
    result = invoke("run", recipe, "--min-cosine", "0.9", "--to", "onnx", "--out", tmp_path / "o", "--quiet")
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load((tmp_path / "o" / "onnx" / "recipe.yaml").read_text())
    assert resolved["min-cosine"] == 0.9 and resolved["to"] == "onnx"
    assert not (tmp_path / "o" / "onnx-int8").exists()


def test_unknown_or_malformed_settings_are_one_line_usage_errors(tmp_path):
    for text, expected in (("model: m.onnx\nmin_cosin: 0.9\n", "did you mean 'min-cosine'"),
                           ("- a\n- b\n", "a recipe is a mapping"),
                           ("model: [unclosed\n", "not valid YAML"),
                           ("a:\n  b:\n    c: 1\n", "one level deep"),
                           ("json: true\n", "unknown setting 'json'")):
        result = invoke("run", write(tmp_path / "r.yaml", text))
        assert result.exit_code == 2, (text, result.output)
        assert expected in result.output and "Traceback" not in result.output
