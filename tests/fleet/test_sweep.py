"""Sweeps on a real local Ray (no mocks): a fleet completes with one calibration pass per model, a gate-only recipe
re-gated, timings that never overlap and the same artifact bytes as a single run; finished jobs are skipped; a killed
worker's job is retried to a complete bundle; Ctrl-C cancels and lists every job; two nodes both take jobs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from compress_export.bundle.manifest import verify_bundle

pytest.importorskip("ray")

BENCH = "bench-seconds: 0.2, bench-batch: '1,8'"


def write_fleet(folder: Path, digits_onnx: Path, digits_data, recipes: str, matrix: str = "", models=("digits",
                                                                                                      "cnn")) -> Path:
    calib, val = digits_data
    shutil.copy(digits_onnx, folder / "digits.onnx")
    entries = {
        "digits": f"{{model: digits.onnx, calib-data: {calib}, val-data: {val}}}",
        "cnn": f"{{model: 'compress_export.demo.model:digits_cnn', input: 'image:1x1x8x8', calib-data: {calib}, "
               f"val-data: {val}}}",
    }
    text = "models:\n" + "".join(f"  {name}: {entries[name]}\n" for name in models) + f"recipes:\n{recipes}{matrix}"
    (folder / "fleet.yaml").write_text(text)
    return folder / "fleet.yaml"


def sweep(fleet: Path, out: Path, *extra: str, wait: bool = True):
    command = [sys.executable, "-m", "compress_export", "sweep", str(fleet), "--out", str(out), "-q", *extra]
    # A shell without job control starts background jobs with SIGINT ignored, and children inherit that: the sweep
    # gets Ctrl-C's default disposition back, as it has in a terminal.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if not wait:
        return process
    stdout, stderr = process.communicate(timeout=600)
    return process.returncode, stderr


def debris(folder: Path) -> list[str]:
    return [str(path.relative_to(folder)) for path in folder.rglob(".*") if path.name != ".statistics"
            and ".statistics" not in path.parts]


@pytest.fixture(scope="module")
def swept(tmp_path_factory, digits_onnx, digits_data):
    folder = tmp_path_factory.mktemp("fleet")
    recipes = (f"  int8: {{to: [onnx-int8], {BENCH}}}\n"
               f"  strict: {{to: [onnx-int8], {BENCH}, min-cosine: 0.99}}\n"
               f"  percentile: {{to: [onnx-int8, onnx], calibrator: percentile, {BENCH}}}\n")
    fleet = write_fleet(folder, digits_onnx, digits_data, recipes, "matrix:\n  cnn: [int8, percentile]\n")
    code, stderr = sweep(fleet, folder / "out", "--workers", "2")
    return fleet, folder / "out", code, stderr


def test_a_fleet_completes_sharing_statistics_and_regating(swept):
    _, out, code, stderr = swept
    assert code == 0, stderr
    summary = json.loads((out / "fleet.json").read_text())
    jobs = {(job["model"], job["recipe"]): job for job in summary["jobs"]}
    assert set(jobs) == {("digits", "int8"), ("digits", "strict"), ("digits", "percentile"), ("cnn", "int8"),
                         ("cnn", "percentile")}
    assert jobs[("digits", "strict")]["regated_from"] == "digits/int8"
    assert summary["shared"]["statistics_collected"] == 2 and summary["shared"]["statistics_reused"] == 2
    assert summary["shared"]["regated"] == 1
    strict = json.loads((out / "digits" / "strict" / "onnx-int8" / "report.json").read_text())
    assert strict["gates"]["min_cosine"] == 0.99 and "re-gated" in strict["notes"][-1]
    rows = [row for row in summary["rows"] if row["target"]]
    assert len(rows) == 7 and all(row["passed"] and row["host"] for row in rows)
    for row in rows:
        verify_bundle(Path(row["bundle"]))
    assert {best["model"] for best in summary["best"]} == {"digits", "cnn"}
    assert (out / "fleet.md").is_file() and (out / "pareto-digits.png").is_file() and not debris(out)


def test_two_jobs_never_measure_at_once_and_each_report_names_its_node(swept):
    _, out, code, _ = swept
    windows = []
    for report_path in out.glob("*/*/*/report.json"):
        report = json.loads(report_path.read_text())
        if any("re-gated" in note for note in report["notes"]):
            continue  # a copy of another job's measurement
        windows.append(tuple(report["bench"]["window"]))
        assert "ray node" in report["bench"]["machine"]["node"]
    windows.sort()
    assert len(windows) == 6
    assert all(end <= start for (_, end), (start, _) in zip(windows, windows[1:], strict=False)), windows


@pytest.mark.parametrize(("job", "targets"), [("cnn/percentile", ("onnx-int8", "onnx")),
                                             ("digits/strict", ("onnx-int8",))])  # built, and re-gated
def test_a_bundle_is_the_one_a_single_run_of_its_recipe_writes(swept, tmp_path, job, targets):
    _, out, _, _ = swept
    folder = out / job
    done = subprocess.run([sys.executable, "-m", "compress_export", "run", str(folder / "job.yaml"), "--out",
                           str(tmp_path / "single"), "--no-bench", "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for target in targets:
        fleet_manifest = json.loads((folder / target / "manifest.json").read_text())
        single_manifest = json.loads((tmp_path / "single" / target / "manifest.json").read_text())
        for name in ("model.onnx", "ranges.json"):
            assert fleet_manifest["files"].get(name) == single_manifest["files"].get(name), (target, name)
        assert fleet_manifest["gates"] == single_manifest["gates"]
        recipes = [yaml.safe_load((root / target / "recipe.yaml").read_text())
                   for root in (folder, tmp_path / "single")]
        for recipe in recipes:
            recipe.pop("out")
            recipe.pop("no-bench")
        assert recipes[0] == recipes[1]


def test_a_finished_fleet_is_skipped_and_compares_with_itself(swept):
    fleet, out, _, _ = swept
    started = time.time()
    code, stderr = sweep(fleet, out)
    assert code == 0, stderr
    summary = json.loads((out / "fleet.json").read_text())
    assert [job["state"] for job in summary["jobs"]] == ["skipped"] * 5
    assert time.time() - started < 60
    done = subprocess.run([sys.executable, "-m", "compress_export", "compare", str(out), str(out), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and len(json.loads(done.stdout)["targets"]) == 7


def _wait_running(folder: Path, timeout: float = 120.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            record = json.loads((folder / "job.json").read_text())
        except (OSError, ValueError):
            record = {}
        if record.get("state") == "running":
            return record
        time.sleep(0.05)
    raise AssertionError(f"{folder} never started")


def test_a_killed_worker_is_retried_and_leaves_no_partial_bundle(tmp_path, digits_onnx, digits_data):
    fleet = write_fleet(tmp_path, digits_onnx, digits_data,
                        "  int8: {to: [onnx-int8], bench-seconds: 1.0, bench-batch: '1,8'}\n", models=("digits",))
    process = sweep(fleet, tmp_path / "out", wait=False)
    record = _wait_running(tmp_path / "out" / "digits" / "int8")
    time.sleep(2.0)  # mid-job: the run is loading, calibrating or timing
    os.kill(record["pid"], signal.SIGKILL)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    job = json.loads((tmp_path / "out" / "digits" / "int8" / "job.json").read_text())
    assert job["attempts"] == 2 and job["exit_code"] == 0
    verify_bundle(tmp_path / "out" / "digits" / "int8" / "onnx-int8")
    assert not debris(tmp_path / "out")


def test_ctrl_c_cancels_the_fleet_and_lists_every_job(tmp_path, digits_onnx, digits_data):
    fleet = write_fleet(tmp_path, digits_onnx, digits_data,
                        "  int8: {to: [onnx-int8], bench-seconds: 2.0, bench-batch: '1,8'}\n")
    process = sweep(fleet, tmp_path / "out", "--workers", "1", wait=False)
    _wait_running(tmp_path / "out" / "digits" / "int8")
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    summary = json.loads((tmp_path / "out" / "fleet.json").read_text())
    assert {job["model"] for job in summary["jobs"]} == {"digits", "cnn"}
    assert all(job["exit_code"] == 130 for job in summary["jobs"])
    assert not debris(tmp_path / "out")


def test_two_nodes_both_take_jobs_and_reports_say_which(tmp_path, digits_onnx, digits_data):
    import ray
    from ray.cluster_utils import Cluster

    from compress_export.cli.main import export_command
    from compress_export.fleet.fleet_file import read_fleet
    from compress_export.fleet.scheduler import SweepSettings, run_sweep

    fleet = write_fleet(tmp_path, digits_onnx, digits_data, f"  int8: {{to: [onnx-int8], {BENCH}}}\n")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        records = run_sweep(read_fleet(fleet, export_command), SweepSettings(out=tmp_path / "out", progress=False),
                            export_command)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert all(record["exit_code"] == 0 for record in records), records
    nodes = {record["node"] for record in records}
    assert len(nodes) == 2
    for record in records:
        report = json.loads((Path(record["folder"]) / "onnx-int8" / "report.json").read_text())
        assert record["node"][:12] in report["bench"]["machine"]["node"]


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1", "no-port"])
def test_a_cluster_that_cannot_be_joined_is_one_line_and_writes_nothing(tmp_path, digits_onnx, digits_data, address):
    fleet = write_fleet(tmp_path, digits_onnx, digits_data, f"  int8: {{to: [onnx-int8], {BENCH}}}\n",
                        models=("digits",))
    started = time.monotonic()
    code, stderr = sweep(fleet, tmp_path / "out", "--address", address)
    assert code == 2 and time.monotonic() - started < 30
    assert stderr.strip().splitlines() == [stderr.strip()] and "cannot join that Ray cluster" in stderr
    assert not (tmp_path / "out").exists()
