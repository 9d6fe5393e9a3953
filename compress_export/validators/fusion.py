"""What onnxruntime actually runs for a QDQ graph: which quantized ops it fused into integer kernels,
and what stayed in float. The likely cause when an INT8 artifact is not faster than FP32."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from ..runtimes.ort_session import Session

INTEGER_KERNELS = ("QLinearConv", "QLinearMatMul", "MatMulIntegerToFloat", "QGemm", "ConvInteger", "MatMulInteger",
                   "DynamicQuantizeMatMul", "QLinearAdd", "QLinearMul", "QAttention", "DynamicQuantizeLSTM")
FLOAT_COMPUTE = ("Conv", "ConvTranspose", "MatMul", "Gemm", "FusedMatMul", "FusedConv", "FusedGemm", "NchwcConv")


def fusion_summary(model_path: Path) -> dict:
    """Op counts of the graph onnxruntime executes (extended optimizations, as served on CPU)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="ce-fusion-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(optimized)
        Session(str(model_path), options, model_path.name)
        graph = onnx.load(str(optimized), load_external_data=False).graph
    constants = {init.name for init in graph.initializer}
    counts = Counter(node.op_type for node in graph.node)
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    unfused = [f"{reader.op_type} {reader.name or '?'}" for node in graph.node
               if node.op_type == "DequantizeLinear" and node.input[0] not in constants
               for reader in readers.get(node.output[0], [])]
    return {
        "integer_kernels": sum(counts[op] for op in INTEGER_KERNELS),
        "float_compute": sum(counts[op] for op in FLOAT_COMPUTE),
        "unfused_dequantize": len(unfused),
        "unfused_readers": unfused[:10],
        "ops": dict(sorted(counts.items())),
    }


def slow_causes(summary: dict, profile: dict | None = None) -> list[str]:
    """Plain-words reasons an INT8 graph can lose to FP32, from `fusion_summary` and, where one was taken, the
    time profile (`time_profile.py`); none for a graph that holds no quantization at all (FP16, FP32)."""
    ops = summary.get("ops", {})
    if not summary["integer_kernels"] and not any(ops.get(op) for op in ("QuantizeLinear", "DequantizeLinear",
                                                                          "DynamicQuantizeLinear")):
        return []
    causes = []
    if summary["integer_kernels"] == 0:
        causes.append("onnxruntime fused no quantized op into an integer kernel: every Q/DQ pair is pure overhead")
    if summary["unfused_dequantize"]:
        causes.append(f"{summary['unfused_dequantize']} activation DequantizeLinear left unfused (e.g. before "
                      f"{', '.join(summary['unfused_readers'][:3])}): those ops run in float behind extra "
                      "quantize/dequantize passes")
    total = summary["integer_kernels"] + summary["float_compute"]
    if total and summary["float_compute"] > summary["integer_kernels"]:
        causes.append(f"{summary['float_compute']} of {total} compute ops still run in float (FP32 islands)")
    slowest = (profile or {}).get("slowest_float_nodes") or []
    if slowest and profile["candidate_ms"] > 0 and profile["float_ms"] >= 0.3 * profile["candidate_ms"]:
        node = slowest[0]
        causes.append(f"float ops take {profile['float_ms'] / profile['candidate_ms']:.0%} of its time (\"Where the "
                      f"time goes\"), the most {node['op']} `{node['node']}` at "
                      f"{node['ms'] / profile['candidate_ms']:.0%}")
    if not causes:
        causes.append(f"no structural cause: all {summary['integer_kernels']} quantized ops run as integer "
                      "kernels with nothing unfused; in a model this small, quantizing inputs and dequantizing "
                      "outputs (or noise on a shared CPU) outweighs the integer arithmetic")
    return causes
