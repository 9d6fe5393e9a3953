import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from compress_export.cli.main import cli
from tests.conftest import DIGITS_FACTORY

COMMANDS = [[], ["export"], ["run"], ["compare"], ["calibrate"], ["validate"], ["demo"], ["targets"], ["lint"],
            ["build-engine"]]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_help_mentions_pickle_safety_and_exit_codes():
    assert "--trust-pickle" in invoke("--help").output
    export_help = " ".join(invoke("export", "--help").output.split())
    assert "Both run code from the file" in export_help and "never runs code from a model" in export_help
    assert "Keras Lambda layers" in export_help
    assert "130 interrupted" in invoke("--help").output


def test_help_imports_no_heavy_framework():
    code = ("import sys; from compress_export.cli.main import main; sys.argv=['compress-export','--help'];\n"
            "try: main()\nexcept SystemExit: pass\n"
            "heavy = ('torch', 'onnx', 'onnxruntime', 'numpy', 'tensorflow', 'matplotlib')\n"
            "print('HEAVY', [m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_targets_lists_onnx_targets():
    output = invoke("targets").output
    for name in ("onnx", "onnx-fp16", "onnx-int8", "onnx-dynamic"):
        assert name in output


def test_targets_and_to_help_list_every_target_the_language_model_ones_included():
    from compress_export.exporters.catalog import CATALOG

    output = invoke("targets").output
    listed = [line.split()[0] for line in output.splitlines() if line.strip() and not line.startswith("for ")]
    assert sorted(listed) == sorted(target.name for target in CATALOG)
    assert "onnx-int4" in listed and "onnxruntime-genai" in output and "compress-export[llm]" in output
    to_help = re.sub(r"-\s+", "-", " ".join(invoke("export", "--help").output.split()))  # wrapped at hyphens
    assert all(target.name in to_help for target in CATALOG)
    assert "for a language model: onnx, onnx-int8, onnx-int4" in to_help


def test_root_help_names_every_kind_of_model():
    text = " ".join(invoke("--help").output.split())
    for kind in (".onnx", ".pt2", ".keras", "Hugging Face checkpoint folder", "ForCausalLM", ".gguf", "factory"):
        assert kind in text, kind


NOISY_FACTORY = """
import logging
import sys
import warnings

import torch

# A library that logs and warns the way torch does: its own handler, its own level, set when it is imported.
library = logging.getLogger("noisylib")
library.addHandler(logging.StreamHandler(sys.stderr))
library.setLevel(logging.WARNING)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, image):
        library.warning("noisylib: a deprecation nobody asked about")
        warnings.warn("a library's UserWarning", UserWarning, stacklevel=1)
        return self.fc(image.flatten(1))


def factory():
    torch.manual_seed(0)
    return Net().eval()
"""


def test_quiet_silences_libraries_logs_and_warnings(tmp_path, digits_data):
    """-q: stderr stays empty though the model's library logs through its own handler and warns on every call."""
    (tmp_path / "noisy.py").write_text(NOISY_FACTORY)
    calib, val = digits_data
    command = [sys.executable, "-m", "compress_export", f"{tmp_path / 'noisy.py'}:factory", "--to", "onnx",
               "--calib-data", str(calib), "--val-data", str(val), "--out", str(tmp_path / "out"), "--no-bench"]
    loud = subprocess.run(command, capture_output=True, text=True)
    assert loud.returncode == 0, loud.stderr
    assert "noisylib: a deprecation" in loud.stderr and "UserWarning" in loud.stderr  # the probe really is noisy
    quiet = subprocess.run([*command, "-q"], capture_output=True, text=True)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""


def _assert_one_line_error(result, code, fragment):
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert lines and fragment in lines[-1], result.output
    assert "Traceback" not in result.output


def test_root_takes_the_model_and_writes_json(tmp_path, digits_onnx, digits_data):
    calib, val = digits_data
    result = invoke(digits_onnx, "--to", "onnx-int8", "--calib-data", calib, "--val-data", val,
                    "--out", tmp_path / "out", "--no-bench", "--json", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["passed"] is True
    assert summary["targets"][0]["report"]["target"] == "onnx-int8"


def test_failed_gate_exits_1(tmp_path, digits_onnx, digits_data):
    calib, val = digits_data
    result = invoke(digits_onnx, "--to", "onnx-int8", "--calib-data", calib, "--val-data", val,
                    "--out", tmp_path / "out", "--no-bench", "-q", "--min-cosine", "0.9999999")
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "out" / "onnx-int8" / "report.json").read_text())
    assert report["passed"] is False and report["exit_code"] == 1


def test_calibrate_writes_ranges(tmp_path, digits_onnx, digits_data):
    out = tmp_path / "ranges.json"
    result = invoke("calibrate", digits_onnx, "--calib-data", digits_data[0], "--calibrator", "percentile",
                    "--out", out, "-q")
    assert result.exit_code == 0, result.output
    table = json.loads(out.read_text())
    assert table["method"] == "percentile" and len(table["ranges"]) >= 4


def test_validate_command_passes_then_refuses_a_tampered_bundle(tmp_path, digits_onnx, digits_data):
    calib, val = digits_data
    assert invoke(digits_onnx, "--to", "onnx", "--calib-data", calib, "--val-data", val,
                  "--out", tmp_path / "out", "--no-bench", "-q").exit_code == 0
    bundle = tmp_path / "out" / "onnx"
    moved = tmp_path / "elsewhere"
    bundle.rename(moved)
    result = invoke("validate", moved, "--no-bench", "--json", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["passed"] is True
    with open(moved / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    _assert_one_line_error(invoke("validate", moved, "--no-bench", "-q"), 2, "does not match its hash")


@pytest.fixture
def bad_inputs(tmp_path, digits_onnx, digits_data):
    good = digits_onnx.read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (tmp_path / "corrupt.onnx").write_bytes(os.urandom(2048))
    images = np.load(digits_data[0])["image"]
    np.savez(tmp_path / "missing.npz", pixels=images, depth=images)
    np.savez(tmp_path / "shape.npz", image=images[:, :, :4, :])
    np.savez(tmp_path / "dtype.npz", image=images.astype(np.complex64))
    nan = images.copy()
    nan[3, 0, 2, 2] = np.nan
    np.savez(tmp_path / "nan.npz", image=nan)
    inf = images.copy()
    inf[0, 0, 0, 0] = np.inf
    np.savez(tmp_path / "inf.npz", image=inf)
    np.savez(tmp_path / "empty.npz", image=images[:0])
    (tmp_path / "a-file").write_text("x")
    return tmp_path


@pytest.mark.parametrize(
    "model, data, extra, code, fragment",
    [
        ("nothere.onnx", "calib", [], 2, "no such file"),
        ("truncated.onnx", "calib", [], 2, "corrupt or truncated"),
        ("corrupt.onnx", "calib", [], 2, "corrupt or truncated"),
        ("good", "missing.npz", [], 2, "missing input 'image'"),
        ("good", "shape.npz", [], 2, "the model expects"),
        ("good", "dtype.npz", [], 2, "complex64"),
        ("good", "nan.npz", [], 2, "NaN or Inf"),
        ("good", "inf.npz", [], 2, "NaN or Inf"),
        ("good", "empty.npz", [], 2, "no samples"),
        ("good", "calib", ["--to", "onnx-int9"], 2, "unknown target 'onnx-int9'"),
        ("good", "calib", ["--out", "a-file/sub"], 2, "not writable"),
        ("good", None, [], 2, "no calibration data"),
        ("factory", "calib", ["--weights", "nothere.safetensors"], 2, "no such file"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code(bad_inputs, digits_onnx, digits_data, model, data, extra, code,
                                                fragment):
    model_arg = {"good": digits_onnx, "factory": DIGITS_FACTORY}.get(model, bad_inputs / model)
    args = [model_arg]
    if "--to" not in extra:
        args += ["--to", "onnx-int8"]
    if data:
        args += ["--calib-data", digits_data[0] if data == "calib" else bad_inputs / data]
    if "--out" in extra:
        extra = ["--out", bad_inputs / extra[1]]
    else:
        args += ["--out", bad_inputs / "out"]
    result = invoke(*args, *extra, "--no-bench", "-q")
    _assert_one_line_error(result, code, fragment)
    assert not (bad_inputs / "out" / "onnx-int8").exists()


def test_pickled_model_needs_trust_pickle(tmp_path, digits_data):
    import torch

    from compress_export.demo.model import digits_cnn

    path = tmp_path / "whole.pt"
    torch.save(digits_cnn(), path)
    calib, val = digits_data
    common = ["--to", "onnx", "--calib-data", calib, "--val-data", val, "--out", tmp_path / "out", "--no-bench", "-q"]
    _assert_one_line_error(invoke(path, *common), 2, "pickle")
    assert invoke(path, *common, "--trust-pickle").exit_code == 0

    state = tmp_path / "state.pt"
    torch.save(digits_cnn().state_dict(), state)
    _assert_one_line_error(invoke(state, *common), 2, "state_dict")
    assert invoke(DIGITS_FACTORY, *common, "--weights", state).exit_code == 0


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_during_calibration_leaves_previous_bundle_intact(tmp_path, digits_onnx, digits_data, sent,
                                                                            code):
    calib, val = digits_data
    out = tmp_path / "out"
    base = [sys.executable, "-m", "compress_export", str(digits_onnx), "--to", "onnx-int8", "--val-data", str(val),
            "--out", str(out), "--no-bench"]
    subprocess.run(base + ["--calib-data", str(calib), "-q"], check=True)
    before = (out / "onnx-int8" / "model.onnx").read_bytes()

    images = np.load(calib)["image"]
    big = tmp_path / "big.npz"
    np.savez(big, image=np.concatenate([images] * 150))
    # a terminal's default Ctrl-C, even where this test runs with SIGINT ignored (a background job inherits that)
    process = subprocess.Popen(base + ["--calib-data", str(big), "--calib-batch", "1"], stderr=subprocess.PIPE,
                               text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = ""
    deadline = time.time() + 120
    while "calibrating" not in seen and time.time() < deadline:
        seen += process.stderr.read(1)
    assert "calibrating" in seen
    time.sleep(0.5)
    process.send_signal(sent)
    rest = process.communicate(timeout=60)[1]
    assert process.returncode == code, seen + rest
    assert "Traceback" not in rest
    assert (out / "onnx-int8" / "model.onnx").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["onnx-int8", "summary.json", "tradeoff.png"] or \
        sorted(p.name for p in out.iterdir()) == ["onnx-int8", "summary.json"]


def test_demo_runs_the_whole_job(tmp_path):
    result = invoke("demo", "--out", tmp_path / "demo", "--no-bench", "-q", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [t["target"] for t in summary["targets"]] == ["onnx", "onnx-int8", "onnx-dynamic"]
    for target in summary["targets"]:
        accuracy = target["report"]["metrics"]
        assert accuracy["reference"]["accuracy"] - accuracy["candidate"]["accuracy"] <= 0.005


def test_random_data_needs_the_flag_and_is_reported(tmp_path, digits_onnx):
    out = tmp_path / "out"
    _assert_one_line_error(invoke(digits_onnx, "--to", "onnx-int8", "--out", out, "--no-bench", "-q"), 2,
                           "--random-data")
    result = invoke(digits_onnx, "--to", "onnx-int8", "--out", out, "--no-bench", "-q", "--random-data",
                    "--calib-samples", "40")
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "onnx-int8" / "report.json").read_text())
    assert report["data"]["calibration"]["synthetic"] is True
    assert any("random data" in warning for warning in report["warnings"])
    assert "Calibrated on random data" in (out / "onnx-int8" / "report.md").read_text()


def test_ranges_from_file_are_reused_and_checked_against_the_model(tmp_path, digits_onnx, digits_data):
    calib, val = digits_data
    ranges = tmp_path / "ranges.json"
    assert invoke("calibrate", digits_onnx, "--calib-data", calib, "--out", ranges, "-q").exit_code == 0
    common = [digits_onnx, "--to", "onnx-int8", "--val-data", val, "--no-bench", "-q"]
    result = invoke(*common, "--ranges", ranges, "--calib-data", calib, "--out", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "onnx-int8" / "ranges.json").read_text() == ranges.read_text()
    foreign = json.loads(ranges.read_text())
    foreign["ranges"] = {"some_other_tensor": [0.0, 1.0]}
    ranges.write_text(json.dumps(foreign))
    _assert_one_line_error(invoke(*common, "--ranges", ranges, "--calib-data", calib, "--out", tmp_path / "b"), 2,
                           "no range for")
    _assert_one_line_error(invoke(*common, "--ranges", ranges, "--calib-data", calib, "--ptq", "equalization",
                                  "--out", tmp_path / "c"), 2, "--ptq equalization changes the activations")
    assert not (tmp_path / "c").exists()


@pytest.mark.skipif(__import__("importlib").util.find_spec("tensorrt") is not None,
                    reason="tensorrt is installed: the missing-engine paths are not taken")
def test_tensorrt_commands_without_tensorrt(tmp_path, digits_onnx, digits_data):
    calib, val = digits_data
    out = tmp_path / "out"
    common = [digits_onnx, "--calib-data", calib, "--val-data", val, "--out", out, "--no-bench", "-q"]
    assert invoke(*common, "--to", "onnx-int8,trt-int8").exit_code == 0
    ours = invoke("lint", out / "trt-int8" / "model.onnx", "--json")
    assert ours.exit_code == 0 and json.loads(ours.stdout)["passed"] is True
    theirs = invoke("lint", out / "onnx-int8" / "model.onnx")
    assert theirs.exit_code == 1
    assert "TensorRT supports only INT8 Q/DQ" in theirs.output
    _assert_one_line_error(invoke("lint", tmp_path / "none.onnx"), 2, "no such file")
    _assert_one_line_error(invoke("validate", out / "trt-int8", "--no-bench", "-q", "--require-engine"), 3,
                           "--require-engine")
    _assert_one_line_error(invoke("build-engine", out / "trt-int8"), 3, "tensorrt not installed")
    _assert_one_line_error(invoke("build-engine", out / "onnx-int8"), 2, "takes trt-int8 bundles")
    _assert_one_line_error(invoke(*common, "--to", "trt-int8", "--require-engine"), 3, "tensorrt not installed")
    assert (out / "trt-int8" / "calibration.cache").read_text().startswith("TRT-100300-EntropyCalibration2")
    version = invoke(*common, "--to", "trt-int8", "--trt-cache-version", "8601", "--trt-cache-algorithm",
                     "MinMaxCalibration")
    assert version.exit_code == 0
    assert (out / "trt-int8" / "calibration.cache").read_text().startswith("TRT-8601-MinMaxCalibration\n")


@pytest.mark.parametrize("kind", ["sample_inputs", "pickled_weight", "opaque_constant"])
def test_crafted_pt2_never_runs_code_without_trust_pickle(tmp_path, kind):
    from tests.hostile_pt2 import crafted_archives

    marker = tmp_path / "payload-ran"
    archive = crafted_archives(tmp_path, marker)[kind]
    result = invoke(archive, "--to", "onnx", "--random-data", "--out", tmp_path / "out", "--no-bench", "-q")
    _assert_one_line_error(result, 2, "--trust-pickle")
    assert not marker.exists()
    assert not (tmp_path / "out" / "onnx").exists()


def test_plain_pt2_passes_the_archive_check(tmp_path):
    from compress_export.sources.pt2_archive import unsafe_members
    from tests.hostile_pt2 import _base_archive

    assert unsafe_members(_base_archive(tmp_path)) == []


def test_one_failing_target_does_not_stop_the_others_and_json_lists_both(tmp_path, digits_onnx, digits_data):
    calib, val = digits_data
    result = invoke(digits_onnx, "--to", "onnx,tflite-fp16,onnx-int8", "--calib-data", calib, "--val-data", val,
                    "--out", tmp_path / "out", "--no-bench", "--json", "-q")
    assert result.exit_code in (3, 4), result.output  # tflite-fp16 takes Keras models; its extra may be missing
    summary = json.loads(result.stdout)
    by_target = {entry["target"]: entry for entry in summary["targets"]}
    assert by_target["onnx"]["passed"] and by_target["onnx-int8"]["passed"]
    assert not by_target["tflite-fp16"]["passed"] and by_target["tflite-fp16"]["error"]
    assert (tmp_path / "out" / "onnx-int8" / "model.onnx").is_file()
    assert not (tmp_path / "out" / "tflite-fp16").exists()
    assert result.stderr.strip().splitlines()[-1].startswith("error: tflite-fp16:")
