"""Speed and quality of INT8 all-MiniLM-L6-v2 on this CPU: FP32 ONNX (twice: the A/A check), onnxruntime's
dynamic quantization, the Optimum-style path (onnxruntime's transformer optimizer, then dynamic quantization),
onnxruntime's static quantization (all weight MatMuls, and the best hand-picked node list: FFN output
MatMuls left in FP32), and compress-export's default `--to onnx-int8`, side by side in one process.

Latency is batch 32, seq 128: every round runs each model once in turn (sessions with spinning off, so
interleaved sessions do not steal each other's cores), and the table reports the median over rounds, as a
ratio to the FP32 median. Quality is the mean cosine of the sentence embedding against
FP32 on held-out sentences.

    python benchmarks/latency.py                 # 200 calibration, 40 held-out sentences, 15 rounds
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
sys.path.insert(0, str(HERE))
from calibration import EXAMPLE, prepare  # noqa: E402

BATCH, CALIB_BATCH = 32, 8


def _rows(path: Path, count: int, skip: int = 0) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {key: npz[key][skip:skip + count] for key in npz.files}


def ffn_output_matmuls(model) -> list[str]:
    """MatMuls with a weight whose input comes out of GELU (an Erf a few nodes up)."""
    constants = {init.name for init in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}

    def after_erf(tensor: str, depth: int = 4) -> bool:
        node = producer.get(tensor)
        if node is None or depth == 0:
            return False
        return node.op_type == "Erf" or any(after_erf(name, depth - 1) for name in node.input)

    return [node.name for node in model.graph.node
            if node.op_type == "MatMul" and node.input[1] in constants and after_erf(node.input[0])]


def onnxruntime_static(fp32: Path, out: Path, calib: dict[str, np.ndarray], exclude: list[str]) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            count = len(next(iter(calib.values())))
            self.batches = iter([{k: v[i:i + CALIB_BATCH] for k, v in calib.items()}
                                 for i in range(0, count, CALIB_BATCH)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_exclude=exclude, extra_options={"MatMulConstBOnly": True})


def onnxruntime_dynamic(fp32: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32))
    del model.graph.value_info[:]
    stripped = out.with_suffix(".stripped.onnx")
    onnx.save_model(model, str(stripped))
    # DefaultTensorType: the fused graph's com.microsoft ops leave some tensors untyped for shape inference
    quantize_dynamic(str(stripped), str(out), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def optimized_then_dynamic(fp32: Path, out: Path) -> None:
    """What Optimum's ORTOptimizer + ORTQuantizer do: fuse the transformer subgraphs (Attention,
    SkipLayerNormalization, BiasGelu) with onnxruntime's transformer optimizer, then quantize dynamically."""
    from onnxruntime.transformers import optimizer

    fused = out.with_suffix(".fused.onnx")
    optimizer.optimize_model(str(fp32), model_type="bert", num_heads=0, hidden_size=0).save_model_to_file(
        str(fused))
    onnxruntime_dynamic(fused, out)


def compress_export_default(folder: Path, calib_path: Path, val_path: Path) -> tuple[Path, dict]:
    from compress_export.pipeline import PipelineConfig, run

    start = time.perf_counter()
    result = run(PipelineConfig(model=f"{EXAMPLE}:factory", targets="onnx-int8", out=folder / "bundle",
                                calib_data=str(calib_path), val_data=str(val_path), bench=None, progress=False))
    seconds = time.perf_counter() - start
    report = result.reports[0].to_dict()
    search = report.get("sensitivity") or {}
    return folder / "bundle" / "onnx-int8" / "model.onnx", {
        "export_seconds": seconds, "search_seconds": search.get("seconds", 0.0),
        "kept_in_float": search.get("kept_in_float", []),
        "ranges": json.loads((folder / "bundle" / "onnx-int8" / "ranges.json").read_text())["method"],
        "per_tensor_ranges": (search.get("range_choice") or {}).get("per_tensor", {}),
    }


def embedding_cosine(session, reference: np.ndarray, val: dict[str, np.ndarray]) -> float:
    produced = np.concatenate([session.run(None, {k: v[i:i + 8] for k, v in val.items()})[0]
                               for i in range(0, len(reference), 8)])
    a, b = reference.reshape(len(reference), -1), produced.reshape(len(produced), -1)
    return float(np.mean((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calib", type=int, default=200)
    parser.add_argument("--val", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()

    import onnx
    import onnxruntime as ort

    fp32, data = prepare(args.out, args.calib + args.val)
    with tempfile.TemporaryDirectory(prefix="ce-latency-") as tmp:
        work = Path(tmp)
        calib, val = _rows(data, args.calib), _rows(data, args.val, skip=args.calib)
        np.savez(work / "calib.npz", **calib)
        np.savez(work / "val.npz", **val)
        graph = onnx.load(str(fp32), load_external_data=False)
        excluded = ffn_output_matmuls(graph)
        candidates = {"fp32": fp32, "fp32 (A/A)": fp32}
        onnxruntime_dynamic(fp32, work / "dynamic.onnx")
        candidates["onnxruntime dynamic"] = work / "dynamic.onnx"
        optimized_then_dynamic(fp32, work / "optimized_dynamic.onnx")
        candidates["transformer optimizer + dynamic (Optimum-style)"] = work / "optimized_dynamic.onnx"
        onnxruntime_static(fp32, work / "ort_static_all.onnx", calib, [])
        candidates["onnxruntime static, all weight MatMuls"] = work / "ort_static_all.onnx"
        onnxruntime_static(fp32, work / "ort_static_picked.onnx", calib, excluded)
        candidates[f"onnxruntime static, {len(excluded)} FFN-out MatMuls in FP32 (hand-picked)"] = \
            work / "ort_static_picked.onnx"
        ours, details = compress_export_default(work, work / "calib.npz", work / "val.npz")
        candidates["compress-export onnx-int8 (defaults)"] = ours

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions = {name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                    for name, path in candidates.items()}
        reference = np.concatenate([sessions["fp32"].run(None, {k: v[i:i + 8] for k, v in val.items()})[0]
                                    for i in range(0, args.val, 8)])
        cosines = {name: embedding_cosine(session, reference, val) for name, session in sessions.items()}
        feeds = {k: np.resize(v, (BATCH, v.shape[1])) for k, v in val.items()}
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for session in sessions.values():
            session.run(None, feeds)
        for _ in range(args.rounds):
            for name, session in sessions.items():
                start = time.perf_counter()
                session.run(None, feeds)
                times[name].append(time.perf_counter() - start)
    medians = {name: float(np.median(values)) for name, values in times.items()}
    rows = [{"model": name, "cosine": cosines[name], "p50_ms": 1000 * medians[name],
             "speedup_vs_fp32": medians["fp32"] / medians[name]} for name in sessions]
    print(f"all-MiniLM-L6-v2, batch {BATCH}, seq 128, {args.rounds} alternating rounds, {args.val} held-out sentences")
    print(f"{'model':62} {'cosine':>8} {'p50 ms':>8} {'vs FP32':>8}")
    for row in rows:
        print(f"{row['model']:62} {row['cosine']:>8.4f} {row['p50_ms']:>8.1f} {row['speedup_vs_fp32']:>7.2f}x")
    print(f"compress-export: ranges {details['ranges']}, per-tensor {details['per_tensor_ranges'] or 'none'}, "
          f"kept in float {details['kept_in_float'] or 'none'}, export {details['export_seconds']:.0f} s "
          f"(search {details['search_seconds']:.0f} s)")
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"batch": BATCH, "seq": 128, "rounds": args.rounds, "calibration": args.calib, "held_out": args.val,
              "rows": rows, "compress_export": details}
    (args.out / "latency.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out / 'latency.json'}")


if __name__ == "__main__":
    main()
