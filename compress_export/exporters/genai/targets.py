"""Language-model targets: the FP32 decoder onnxruntime-genai's builder wrote, with its weight matrices at the
target's width: all float (`onnx`), all INT8 (`onnx-int8`), or block-wise INT4 with the matrices a weight-width
search promoted kept at 8 bits and GPTQ's codes where calibration made them (`onnx-int4`). The bundle holds the
decoder folder (model, weights, genai_config.json, tokenizer files) under `model/`."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ...specs import Artifact
from ..registry import ExportContext
from .build import ACCURACY_LEVEL, BLOCK_SIZE, MODEL_FILE, quantize

MODEL_DIR = "model"
RUNTIME = "onnxruntime-genai"


@dataclass(frozen=True)
class WeightPlan:
    """What a decoder target writes: each weight matrix's width (None: float; absent: the target's own width), where
    4-bit codes come from (GPTQ's, by node) and the pieces of fused matrices the widths may name. `units` are the
    matrices or pieces `bits` names, for the report's precision summary."""

    units: tuple = ()
    bits: Mapping[str, int | None] = field(default_factory=dict)
    int4: Mapping = field(default_factory=dict)
    pieces: tuple = ()

    def at(self, width: int | None) -> WeightPlan:
        """Every unit without a width of its own at `width`."""
        return replace(self, bits={unit.node: self.bits.get(unit.node, width) for unit in self.units})


def export_decoder(ctx: ExportContext) -> Artifact:
    folder = ctx.bundle_dir / MODEL_DIR
    folder.mkdir()
    for item in ctx.fp32_onnx.iterdir():
        if item.is_file():
            shutil.copy2(item, folder / item.name)  # not a hard link: onnx refuses external data with two
    return _artifact(ctx, "onnx", ctx.weight_plan.at(None))


def export_int8(ctx: ExportContext) -> Artifact:
    plan = ctx.weight_plan.at(8)
    quantize(ctx.fp32_onnx, ctx.bundle_dir / MODEL_DIR, dict(plan.bits))
    return _artifact(ctx, "onnx-int8", plan)


def export_int4(ctx: ExportContext) -> Artifact:
    """4-bit weights, bar what the plan promoted; GPTQ's codes where the plan carries them, else round-to-nearest."""
    plan = ctx.weight_plan.at(4)
    quantize(ctx.fp32_onnx, ctx.bundle_dir / MODEL_DIR, dict(plan.bits), dict(plan.int4), list(plan.pieces))
    return _artifact(ctx, "onnx-int4", plan)


def _artifact(ctx: ExportContext, target: str, plan: WeightPlan) -> Artifact:
    exporter = ("onnxruntime-genai model builder (fp32, cpu); weights by onnxruntime's MatMulNBitsQuantizer "
                f"(block {BLOCK_SIZE}, symmetric, accuracy level {ACCURACY_LEVEL})"
                + ("; 4-bit MatMul codes and scales by GPTQ on calibration text" if plan.int4 else ""))
    return Artifact(target, f"{MODEL_DIR}/{MODEL_FILE}", ctx.inputs, ctx.outputs, RUNTIME,
                    details={"precision": precision(plan.units, plan.bits), "exporter": exporter})


def precision(units, bits: Mapping[str, int | None]) -> dict:
    """Parameters per width and what stayed above 4 bits; `units` the matrices or their pieces `bits` names."""
    by_width: dict[str, int] = {}
    for unit in units:
        width = bits.get(unit.node)
        key = "float" if width is None else f"int{width}"
        by_width[key] = by_width.get(key, 0) + unit.parameters
    return {"weights_by_precision": by_width, "block_size": BLOCK_SIZE,
            "kept_above_4_bits": [u.label for u in units if bits.get(u.node) != 4]
            if any(b == 4 for b in bits.values()) else []}
