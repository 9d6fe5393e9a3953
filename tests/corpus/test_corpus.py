"""Every corpus case through the real CLI: the documented exit code, a one-line error carrying the case's
words, no traceback, no code run from a file, nothing partial left, the previous bundle intact."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from compress_export.cli.main import cli

from .assets import write_assets
from .cases import CASES, Context

PREVIOUS = "previous bundle, kept"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    from compress_export.job import PipelineConfig
    from compress_export.pipeline import run

    folder = tmp_path_factory.mktemp("corpus")
    assets = write_assets(folder / "assets")
    result = run(PipelineConfig(model=str(assets["mlp"]), targets="onnx,trt-int8", out=folder / "bundles",
                                calib_data=str(assets["mlp_calib"]), val_data=str(assets["mlp_val"]), bench=None,
                                progress=False))
    assert result.exit_code == 0
    return assets, {target: folder / "bundles" / target for target in ("onnx", "trt-int8")}


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*") if p.name.startswith(".")) if out.exists() else []


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_corpus_case(case, corpus, tmp_path):
    assets, bundles = corpus
    context = Context(assets, bundles, tmp_path, tmp_path / "payload-ran")
    previous = context.out / "onnx" / "model.onnx"
    previous.parent.mkdir(parents=True)
    previous.write_text(PREVIOUS)
    args = [str(arg) for arg in case.make(context)]
    result = CliRunner().invoke(cli, args)
    output = result.output
    assert result.exit_code == case.code, f"{args}\n{output}"
    assert "Traceback" not in output, output
    assert not context.marker.exists(), "code from a file ran"
    assert _leftovers(context.out) == [], "something partial was left"
    if case.code not in (0, 1):
        lines = [line for line in output.strip().splitlines() if line.strip()]
        assert lines, "no message"
        ours = lines[-1].startswith("error:")
        assert ours and len(lines) == 1 or lines[-1].startswith("Error:"), output  # ours, or click's usage error
        if case.fragment:
            assert case.fragment in lines[-1], output
        assert previous.read_text() == PREVIOUS
