"""Calibrate an FP32 ONNX graph: choose tensors, one streaming pass, ranges by the chosen method."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx

from ..data.calibration_data import CalibrationData
from ..errors import UsageError
from ..graphs.selection import float_activations, op_types, select_nodes, with_inferred_shapes
from ..specs import QuantRecipe
from ..util.hashing import sha256_file
from .collector import collect, unquantizable
from .methods import CALIBRATORS, compute_ranges
from .range_table import RangeTable
from .stats_cache import load_statistics, save_statistics, statistics_key


class NothingToQuantize(UsageError):
    """No top-level node is selected: the quantized targets fail, the others go on."""


def nothing_selected(model: onnx.ModelProto, recipe: QuantRecipe) -> str:
    wanted = set(op_types(recipe))
    bodies = [attribute.g for node in model.graph.node if node.op_type in ("If", "Loop", "Scan")
              for attribute in node.attribute if attribute.HasField("g")]
    inside = sum(node.op_type in wanted for body in bodies for node in body.node)
    if inside:
        return (f"every node this target would quantize ({inside} in all) sits inside If/Loop/Scan bodies, which "
                "stay in float; the float targets (onnx, onnx-fp16, onnx-dynamic) still apply")
    return (f"no node of this model is selected for quantization (ops {', '.join(op_types(recipe))}; "
            "check --include-ops / --exclude-ops / --exclude-nodes)")


def calibrate_onnx(model_path: Path, data: CalibrationData, recipe: QuantRecipe, progress: bool = True,
                   cache: Path | None = None) -> RangeTable:
    """`cache`: a folder of calibration statistics; a pass over the same graph, data, tensors and bins reads them
    from there instead of running again (stats_cache.py)."""

    model = with_inferred_shapes(onnx.load(str(model_path), load_external_data=False))
    tensors = float_activations(model, select_nodes(model, recipe))
    if not tensors:
        raise NothingToQuantize(nothing_selected(model, recipe))
    del model
    model_sha256 = sha256_file(model_path)
    key = statistics_key(model_sha256, tensors, data.fingerprint, recipe.num_bins) if cache else ""
    stats = load_statistics(cache, key, tensors) if cache else None
    reused = stats is not None
    if stats is None:
        stats = _collect(model_path, tensors, data, recipe.num_bins, progress)
        if cache:
            save_statistics(cache, key, stats)
    skipped = unquantizable(stats)
    usable = {name: hist for name, hist in stats.items() if name not in skipped}
    return RangeTable(
        method=recipe.method,
        ranges=compute_ranges(usable, recipe.method, recipe.percentile),
        model_sha256=model_sha256,
        data_fingerprint=data.fingerprint,
        skipped=skipped,
        histograms=usable,
        statistics="reused" if reused else "collected",
    )


def _collect(model_path: Path, tensors: list[str], data: CalibrationData, num_bins: int, progress: bool) -> dict:
    from tqdm import tqdm

    with tqdm(total=len(data), unit="sample", desc="calibrating", disable=not progress, file=sys.stderr,
              leave=False) as bar:
        return collect(model_path, tensors, data, num_bins, on_batch=bar.update)


def ranges_by_method(table: RangeTable, percentile: float = 99.99) -> dict[str, dict[str, tuple[float, float]]]:
    """Every calibrator's ranges from the histograms the table was made from (none for a table read from
    a file)."""
    if not table.histograms:
        return {}
    return {method: dict(table.ranges) if method == table.method
            else compute_ranges(table.histograms, method, percentile) for method in CALIBRATORS}
