"""Write the corpus to a folder: every case's files and `cases.json` with its command line, exit code and
expected words, for running the cases by hand or on another machine.

    python -m tests.corpus.generate OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .assets import write_assets
from .cases import CASES, Context


def generate(folder: Path) -> list[dict]:
    from compress_export.job import PipelineConfig
    from compress_export.pipeline import run

    assets = write_assets(folder / "assets")
    run(PipelineConfig(model=str(assets["mlp"]), targets="onnx,trt-int8", out=folder / "bundles",
                       calib_data=str(assets["mlp_calib"]), val_data=str(assets["mlp_val"]), bench=None,
                       progress=False))
    bundles = {target: folder / "bundles" / target for target in ("onnx", "trt-int8")}
    listed = []
    for case in CASES:
        case_folder = folder / "cases" / case.name
        case_folder.mkdir(parents=True, exist_ok=True)
        args = case.make(Context(assets, bundles, case_folder, case_folder / "payload-ran"))
        listed.append({"name": case.name, "args": ["compress-export", *map(str, args)], "exit_code": case.code,
                       "message_contains": case.fragment})
    (folder / "cases.json").write_text(json.dumps(listed, indent=2) + "\n")
    return listed


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-out")
    print(f"{len(generate(out))} cases written to {out / 'cases.json'}")
