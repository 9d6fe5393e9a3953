"""openvino (FP32 IR), openvino-fp16 (FP16 weights) and openvino-int8: our range table and our placement as the QDQ
graph of onnx-int8, read by OpenVINO's ONNX frontend (Q/DQ pairs become FakeQuantize) and saved as IR. All validated
and timed in OpenVINO's CPU plugin."""

from __future__ import annotations

import re
import tempfile
from dataclasses import replace
from pathlib import Path

from ...errors import ExportError
from ...runtimes.openvino import EXACT_OPTIONS, first_line, openvino
from ...specs import Artifact
from ..onnx.targets import MODEL_FILE as ONNX_FILE
from ..onnx.targets import export_int8 as export_onnx_int8
from ..registry import ExportContext

MODEL_FILE = "model.xml"
AUTO_NAME = re.compile(r"[A-Z][A-Za-z0-9]*_\d+")


def export_fp32(ctx: ExportContext) -> Artifact:
    _save(_convert(ctx.fp32_onnx, ctx), ctx, compress_to_fp16=False)
    return _artifact(ctx, "openvino", ("FP32 IR",))


def export_fp16(ctx: ExportContext) -> Artifact:
    _save(_convert(ctx.fp32_onnx, ctx), ctx, compress_to_fp16=True)
    return _artifact(ctx, "openvino-fp16", ("FP16 weights; the CPU plugin computes in FP32 (decompressed on load)",))


def export_int8(ctx: ExportContext) -> Artifact:
    with tempfile.TemporaryDirectory(prefix="ce-openvino-int8-") as tmp:
        qdq = searched_graph(ctx, Path(tmp))
        _save(_convert(qdq.path, ctx), ctx, compress_to_fp16=False)
    notes = (*qdq.notes, "Q/DQ pairs read as FakeQuantize: OpenVINO runs the quantized operations in INT8")
    return _artifact(ctx, "openvino-int8", notes)


def searched_graph(ctx: ExportContext, folder: Path) -> Artifact:
    """The QDQ ONNX graph openvino-int8 is converted from, written to `folder`: the graph the budget search rewrites
    (its trials run in OpenVINO)."""
    artifact = export_onnx_int8(replace(ctx, bundle_dir=folder))
    return replace(artifact, path=str(folder / ONNX_FILE))


def _convert(onnx_path: Path, ctx: ExportContext):
    ov = openvino()
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:  # the ONNX frontend's OpConversionFailure and others
        raise ExportError(f"OpenVINO cannot convert the model: {first_line(exc)}") from None
    stable_names(model, _onnx_names(onnx_path))
    # The ONNX output names exactly: a port can carry several names, and `validate` reads outputs by name.
    for port, name in zip(model.outputs, ctx.outputs, strict=False):
        if name in port.get_names():
            port.get_tensor().set_names({name})
    return model


def stable_names(model, kept: set[str]) -> None:
    """Operations the frontend made (constants, converts, folded reshapes) are named from a process-wide counter
    (`Constant_3319` in one run, `Constant_6784` in the next); named by their place in the graph instead, the same
    model gives a byte-identical IR."""
    for index, op in enumerate(model.get_ordered_ops()):
        name = op.get_friendly_name()
        if name not in kept and AUTO_NAME.fullmatch(name):
            op.set_friendly_name(f"{op.get_type_name()}.{index}")


def _onnx_names(path: Path) -> set[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return {node.name for node in graph.node} | {name for node in graph.node for name in node.output} | {
        value.name for value in graph.input}


def _save(model, ctx: ExportContext, compress_to_fp16: bool) -> None:
    for key, value in EXACT_OPTIONS.items():
        model.set_rt_info(value, ["runtime_options", key])
    openvino().save_model(model, str(ctx.bundle_dir / MODEL_FILE), compress_to_fp16=compress_to_fp16)


def _artifact(ctx: ExportContext, target: str, notes: tuple[str, ...]) -> Artifact:
    return Artifact(target, MODEL_FILE, ctx.inputs, ctx.outputs, "openvino", notes)
