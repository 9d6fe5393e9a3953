"""`compare A B` gates a release on regressions: slower against FP32, worse on a gate, larger; the same run
compared with itself passes; folders that are not bundles are one-line usage errors."""

import json

from click.testing import CliRunner

from compress_export.cli.main import cli


def bundle(folder, cosine=0.995, accuracy_drop=0.2, speedup=1.5, size=1000):
    folder.mkdir(parents=True)
    report = {"target": "onnx-int8", "passed": True, "artifact": {"size_bytes": size},
              "gate_results": [{"gate": "min_cosine[out]", "value": cosine, "passed": True},
                               {"gate": "max_accuracy_drop", "value": accuracy_drop, "passed": True}],
              "bench": {"ratios": {"speedup_p50_batch32": speedup},
                        "candidate": {"by_batch": {"32": {"p50_ms": 10.0 / speedup}}}},
              "flops": {"candidate": {"macs": 5000}}}
    (folder / "report.json").write_text(json.dumps(report))
    return folder


def invoke(*args):
    return CliRunner().invoke(cli, ["compare", *map(str, args)])


def test_the_same_run_passes_and_shows_every_row(tmp_path):
    a = bundle(tmp_path / "a")
    result = invoke(a, a)
    assert result.exit_code == 0, result.output
    for row in ("min_cosine[out]", "max_accuracy_drop", "speed-up vs FP32 @ batch 32", "size (bytes)", "MACs"):
        assert row in result.output


def test_each_regression_fails_its_gate(tmp_path):
    a = bundle(tmp_path / "a")
    cases = {"slower": {"speedup": 1.3}, "cosine": {"cosine": 0.98}, "accuracy": {"accuracy_drop": 0.9},
             "larger": {"size": 1200}}
    for name, change in cases.items():
        result = invoke(a, bundle(tmp_path / name, **change), "--json")
        assert result.exit_code == 1, (name, result.output)
        assert json.loads(result.output)["targets"][0]["regressions"], name
    assert invoke(a, bundle(tmp_path / "better", speedup=1.6, cosine=0.999, accuracy_drop=0.0)).exit_code == 0
    assert invoke(a, tmp_path / "slower", "--max-latency-regression", "20").exit_code == 0


def test_folders_that_are_not_runs_are_usage_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke(tmp_path / "empty", bundle(tmp_path / "a"))
    assert result.exit_code == 2 and "neither a bundle" in result.output
