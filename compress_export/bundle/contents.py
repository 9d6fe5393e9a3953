"""What every bundle holds besides its artifact and its reference data, written the same way for every kind of
model: report.json, report.md, the plot, the run's recipe and, last, the manifest that hashes all of it; and the FP32
baseline a target is timed against, where the bundle carries one."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from .manifest import write_manifest
from .recipe import RECIPE_FILE, recipe_yaml


def finish_bundle(folder: Path, report, manifest: dict, run_recipe: Mapping | None,
                  plot: Callable[[list, Path], object]) -> dict:
    """The reports, the plot (`plot([report], path)`), recipe.yaml where the run has one, then the manifest."""
    (folder / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (folder / "report.md").write_text(report.to_markdown())
    plot([report], folder / "tradeoff.png")
    if run_recipe:
        (folder / RECIPE_FILE).write_text(recipe_yaml(dict(run_recipe)))
    return write_manifest(folder, manifest)


def copy_baseline(folder: Path, runtime: str, path: Path) -> dict:
    """The FP32 model a target is timed against, copied under baseline/ (with its external data), so that `validate`
    times speed-ups on the device; its manifest entry."""
    import shutil

    from ..graphs.onnx_io import companions

    (folder / "baseline").mkdir()
    for file in [path, *companions(path)]:
        shutil.copy2(file, folder / "baseline" / file.name)
    return {"path": f"baseline/{path.name}", "runtime": runtime}
