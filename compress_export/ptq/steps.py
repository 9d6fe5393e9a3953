"""The PTQ weight steps, in the order they run: the two that reshape the FP32 graph (outputs unchanged, ranges
calibrated again), then rounding, then the bias that absorbs what rounding leaves. A step is one module and one
line here: "module:function" taking (model, StepInputs), changing the model in place, returning how many layers
or activations it changed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..data.calibration_data import CalibrationData
from ..util.lazy import resolve

STEPS = {
    "equalization": "compress_export.ptq.step_functions:equalization",
    "smoothquant": "compress_export.ptq.step_functions:smoothquant",
    "learned-rounding": "compress_export.ptq.step_functions:learned_rounding",
    "bias-correction": "compress_export.ptq.step_functions:bias_correction",
}
RESHAPING = ("equalization", "smoothquant")  # FP32-equivalent graph changes: activation ranges move


@dataclass
class StepInputs:
    data: CalibrationData
    per_channel: bool
    nodes: set[str]  # the nodes the target quantizes
    unrounded: dict[str, np.ndarray] = field(default_factory=dict)  # weights as they were before rounding
    statistics: dict = field(default_factory=dict)  # layer inputs by graph digest, shared between candidates
    rounded_from: str = ""  # the digest of the graph learned rounding read its inputs from


def ordered(steps: Sequence[str]) -> tuple[str, ...]:
    return tuple(name for name in STEPS if name in steps)


def apply_steps(model: onnx.ModelProto, steps: Sequence[str], inputs: StepInputs) -> dict[str, int]:
    """Runs the steps in their order, changing the model in place; returns what each changed."""
    inputs.unrounded = {}
    return {name: resolve(STEPS[name])(model, inputs) for name in ordered(steps)}


def graph_digest(model: onnx.ModelProto) -> str:
    return hashlib.sha256(b"".join(init.raw_data or init.SerializeToString()
                                   for init in model.graph.initializer)).hexdigest()
