"""The FP32 graph's range table for a run: calibrated in one streaming pass, or read from the user's ranges.json or
TensorRT cache and checked to cover every tensor the model quantizes."""

from __future__ import annotations

from pathlib import Path

import onnx

from ..errors import UsageError
from ..graphs.selection import COMPUTE_OPS, select_nodes, with_inferred_shapes
from ..specs import QuantRecipe
from .calibrate import calibrate_onnx
from .range_table import RangeTable


def onnx_ranges(config, fp32: Path, calib, recipe: QuantRecipe) -> RangeTable:
    if config.ranges_from:
        return checked_ranges(RangeTable.load(config.ranges_from), config.ranges_from, fp32, config.recipe)
    if config.ranges_from_cache:
        try:
            text = Path(config.ranges_from_cache).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--ranges-from-cache {config.ranges_from_cache}: cannot read ({exc})") from None
        table = RangeTable.from_trt_cache(text, config.ranges_from_cache)
        return checked_ranges(table, config.ranges_from_cache, fp32, config.recipe)
    cache = Path(config.stats_cache) if config.stats_cache else None
    return calibrate_onnx(fp32, calib, recipe, config.progress, cache)


def checked_ranges(table: RangeTable, path: str, fp32: Path, recipe: QuantRecipe) -> RangeTable:
    """A range table given by the user must cover the activation input of every compute op."""
    graph = with_inferred_shapes(onnx.load(str(fp32), load_external_data=False))
    compute = QuantRecipe(include_ops=COMPUTE_OPS, exclude_ops=recipe.exclude_ops, exclude_nodes=recipe.exclude_nodes)
    constants = {init.name for init in graph.graph.initializer}
    needed = [node.input[0] for node in select_nodes(graph, compute) if node.input[0] not in constants]
    missing = [name for name in needed if name not in table.ranges and name not in table.skipped]
    if missing:
        raise UsageError(f"{path}: no range for {len(missing)} of the {len(needed)} tensors this model "
                         f"quantizes (first: {', '.join(missing[:3])}); was it calibrated on another model?")
    return table
