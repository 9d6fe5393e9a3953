"""Calibration for 4-bit weights: for every weight MatMul's input X, H = XᵀX over calibration text (captured from
the FP32 decoder in onnxruntime, one window at a time), then GPTQ's rounding of each matrix with its H, and the
relative output error that rounding leaves, tr(DᵀHD) / tr(WᵀHW) with D the weight change; for an embedding table
(GatherBlockQuantized rounds to nearest) the relative error of the rows the calibration text reads. Those errors
are the search's ranking. The calibration text is never the held-out text the perplexity budget is measured on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .build import BLOCK_SIZE, MODEL_FILE, WeightMatrix
from .gptq import Int4Weight, NotPositiveDefinite, gptq
from .weight_sensitivity import Edges, loss_sensitivity

ACT_ORDER = True
LOSS_WINDOWS = 8  # calibration windows the loss sensitivity is measured on (a backward pass each)


@dataclass
class Calibration:
    int4: dict[str, Int4Weight] = field(default_factory=dict)  # MatMul node -> its GPTQ codes and scales
    output_error: dict[str, float] = field(default_factory=dict)  # node -> relative output error at 4 bits
    loss_error: dict[str, float] | None = None  # unit -> Σ (g·Δy)² (loss_sensitivity), where every matrix matched
    units: list[WeightMatrix] = field(default_factory=list)  # what the search promotes: matrices or their pieces
    tokens: int = 0
    seconds: float = 0.0

    @property
    def ranked_by(self) -> str:
        return "loss sensitivity (Σ (g·Δy)² on the calibration text) per weight a token reads" if self.loss_error \
            else "relative output error on the calibration text per weight a token reads"

    @property
    def pieces(self) -> list[WeightMatrix]:
        """The units that are parts of a fused MatMul (for build.quantize)."""
        return [unit for unit in self.units if unit.parent is not None]

    def ranking(self) -> list[tuple[str, float]]:
        """(unit, what its 4-bit rounding costs per weight a token reads), the best buy first: by the loss where
        the PyTorch model's modules matched every matrix (a fused MatMul per module), else by each matrix's own
        output error. Per weight read, because promoting a matrix slows decoding in proportion to it: a large LM
        head that costs little quality per weight comes after many small projections."""
        scores = self.loss_error or self.output_error
        read = {m.node: m.read_per_token for m in self.units}
        return sorted(((node, score / read[node]) for node, score in scores.items()),
                      key=lambda item: (-item[1], item[0]))


def calibration_windows(tokenizer, spec: str | None, settings) -> tuple[list[np.ndarray], str]:
    """(token windows of `settings.window`, up to `settings.calibration_tokens` in all; where the text came from)."""
    from ...data.text import calibration_text
    from ...errors import UsageError

    text, origin = calibration_text(spec)
    ids = np.asarray(tokenizer(text)["input_ids"], dtype=np.int64)[: settings.calibration_tokens]
    spans = [ids[i: i + settings.window] for i in range(0, len(ids), settings.window)]
    spans = [span for span in spans if len(span) >= 2]
    if not spans:
        raise UsageError("--calib-data: fewer than two tokens of calibration text")
    return spans, origin


def matmul_inputs(model, matrices: list[WeightMatrix]) -> dict[str, str]:
    """{MatMul node: the activation tensor it multiplies}."""
    wanted = {m.node for m in matrices if m.op == "MatMul"}
    return {node.name: node.input[0] for node in model.graph.node if node.name in wanted}


def input_hessians(model, feeds, names: list[str], spans: list[np.ndarray]) -> dict[str, np.ndarray]:
    """{input tensor: XᵀX [K, K] float64} over the token windows `spans`."""
    from ...graphs.onnx_io import session_with_outputs

    run = session_with_outputs(model, names)
    sums: dict[str, np.ndarray] = {}
    for ids in spans:
        captured = run(feeds(ids))
        for name in names:
            x = captured[name].reshape(-1, captured[name].shape[-1]).astype(np.float32)
            product = (x.T @ x).astype(np.float64)
            sums[name] = sums[name] + product if name in sums else product
    return sums


def calibrate(fp32: Path, matrices: list[WeightMatrix], spans: list[np.ndarray], folder: Path | None = None
              ) -> Calibration:
    """GPTQ 4-bit weights of every MatMul in `matrices`, from the inputs the FP32 model sees on `spans`, every
    matrix's relative output error at 4 bits, and with the Hugging Face `folder` its loss sensitivity on the first
    LOSS_WINDOWS spans."""
    import time

    import onnx
    from onnx import numpy_helper

    from ...runtimes.onnxruntime_genai import Feeds

    start = time.perf_counter()
    model = onnx.load(str(fp32 / MODEL_FILE))
    inputs = matmul_inputs(model, matrices)
    hessians = input_hessians(model, Feeds.of_model(fp32, model), sorted(set(inputs.values())), spans)
    weights = {init.name: init for init in model.graph.initializer}
    result = Calibration(tokens=int(sum(len(ids) for ids in spans)), units=list(matrices))
    read = np.unique(np.concatenate(spans)) if spans else np.zeros(0, np.int64)
    rounded, edges = {}, {}
    for matrix in matrices:
        weight = numpy_helper.to_array(weights[matrix.weight]).astype(np.float32)
        if matrix.op != "MatMul":  # an embedding table: the rows the text reads, blocks along the hidden axis
            table = weight.T if matrix.transposed else weight
            rows = table[read]
            result.output_error[matrix.node] = float(((fake_quantize(rows, 4, 1) - rows) ** 2).sum()
                                                     / max((rows ** 2).sum(), 1e-30))
            rounded[matrix.node], edges[matrix.node] = fake_quantize(table, 4, 1), Edges.of(table)
            continue
        hessian = hessians[inputs[matrix.node]]
        try:
            int4 = gptq(weight, hessian, BLOCK_SIZE, ACT_ORDER)
            result.int4[matrix.node] = int4
            rounded[matrix.node] = int4.dequantized()
        except NotPositiveDefinite:  # the quantizer's round-to-nearest stays for this matrix
            rounded[matrix.node] = fake_quantize(weight, 4, 0)
        edges[matrix.node] = Edges.of(weight)
        result.output_error[matrix.node] = relative_output_error(weight, rounded[matrix.node], hessian)
    del model, weights, hessians
    if folder is not None:
        try:
            found = loss_sensitivity(folder, matrices, edges, rounded, spans[:LOSS_WINDOWS])
        except MemoryError:  # a second FP32 copy in PyTorch did not fit: rank by output error
            found = None
        if found is not None:
            result.loss_error, result.units = found.scores, found.units
    result.seconds = time.perf_counter() - start
    return result


def fake_quantize(weight: np.ndarray, bits: int, axis: int) -> np.ndarray:
    """Block-wise symmetric rounding to nearest along `axis` (blocks of BLOCK_SIZE), as MatMulNBits and
    GatherBlockQuantized store it."""
    moved = np.moveaxis(weight, axis, -1)
    pad = (-moved.shape[-1]) % BLOCK_SIZE
    padded = np.pad(moved, [(0, 0)] * (moved.ndim - 1) + [(0, pad)])
    blocks = padded.reshape(*padded.shape[:-1], -1, BLOCK_SIZE)
    top = 2 ** (bits - 1)
    scale = np.abs(blocks).max(axis=-1, keepdims=True) / top
    scale[scale == 0] = 1.0
    rounded = (np.clip(np.round(blocks / scale), -top, top - 1) * scale).reshape(padded.shape)
    return np.moveaxis(rounded[..., : moved.shape[-1]], -1, axis)


def relative_output_error(weight: np.ndarray, changed: np.ndarray, hessian: np.ndarray) -> float:
    """|X(W' - W)|² / |XW|² for the inputs X with XᵀX = `hessian`."""
    delta = (changed - weight).astype(np.float64)
    exact = weight.astype(np.float64)
    return float(((hessian @ delta) * delta).sum() / max(((hessian @ exact) * exact).sum(), 1e-30))
